// The task's log groups and its two roles: the execution role (ECS pulls images and reads exactly
// the SSRF token secret) and the task role (the agent runs as it: it reads exactly the secrets this
// task serves). No wildcards.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { executionRoleSecretsPolicy, taskRolePolicy } from "../plan/iam.ts";
import { CONTAINER_NAMES } from "../plan.ts";

/** One per container; none for the server when it is a stdio server (its lines are the sidecar's). */
export type LogGroups = {
  readonly agent: aws.cloudwatch.LogGroup;
  readonly server: aws.cloudwatch.LogGroup | undefined;
  readonly sidecar: aws.cloudwatch.LogGroup;
};

export function createLogGroups(
  name: string,
  retentionInDays: number,
  opts: pulumi.CustomResourceOptions,
  containers: { readonly server: boolean } = { server: true },
): LogGroups {
  const logGroup = (container: string) =>
    new aws.cloudwatch.LogGroup(
      `${name}-${container}`,
      { name: `/mcp-sidecar/${name}/${container}`, retentionInDays },
      opts,
    );
  return {
    agent: logGroup(CONTAINER_NAMES.agent),
    server: containers.server ? logGroup(CONTAINER_NAMES.server) : undefined,
    sidecar: logGroup(CONTAINER_NAMES.sidecar),
  };
}

export interface RolesInput {
  readonly tokenSecretArn: pulumi.Output<string>;
  /** The secrets the task serves (API key, injected headers); none: no task-secrets policy at all. */
  readonly servedSecretArns: pulumi.Output<string[]> | undefined;
  readonly kmsKeyArn: string | undefined;
}

export interface TaskRoles {
  readonly executionRole: aws.iam.Role;
  readonly taskRole: aws.iam.Role;
  /** The grants: the tasks must not start before them. */
  readonly prerequisites: pulumi.Resource[];
}

const ASSUME_ECS_TASKS = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" },
  ],
});

export function createRoles(name: string, input: RolesInput, opts: pulumi.CustomResourceOptions): TaskRoles {
  const executionRole = new aws.iam.Role(`${name}-execution`, { assumeRolePolicy: ASSUME_ECS_TASKS }, opts);
  const prerequisites: pulumi.Resource[] = [
    new aws.iam.RolePolicyAttachment(
      `${name}-execution`,
      {
        role: executionRole.name,
        policyArn: "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
      },
      opts,
    ),
    new aws.iam.RolePolicy(
      `${name}-execution-token`,
      {
        role: executionRole.id,
        policy: input.tokenSecretArn.apply((arn) => JSON.stringify(executionRoleSecretsPolicy(arn))),
      },
      opts,
    ),
  ];
  const taskRole = new aws.iam.Role(`${name}-task`, { assumeRolePolicy: ASSUME_ECS_TASKS }, opts);
  if (input.servedSecretArns !== undefined) {
    prerequisites.push(
      new aws.iam.RolePolicy(
        `${name}-task-secrets`,
        {
          role: taskRole.id,
          policy: input.servedSecretArns.apply((arns) =>
            JSON.stringify(taskRolePolicy(arns, input.kmsKeyArn)),
          ),
        },
        opts,
      ),
    );
  }
  return { executionRole, taskRole, prerequisites };
}

/** The secrets a task serves, for its role: the API key (when there is one) and the injected headers'. */
export function servedSecretArns(
  apiKeySecretArn: pulumi.Output<string> | undefined,
  headerSecretArns: readonly string[],
  sessionKeySecretArn?: pulumi.Output<string> | undefined,
): pulumi.Output<string[]> | undefined {
  if (apiKeySecretArn === undefined && headerSecretArns.length === 0 && sessionKeySecretArn === undefined)
    return undefined;
  return pulumi
    .all([pulumi.output(apiKeySecretArn), pulumi.output(sessionKeySecretArn)])
    .apply(([apiKey, sessionKey]) => [
      ...(apiKey ? [apiKey] : []),
      ...headerSecretArns,
      ...(sessionKey ? [sessionKey] : []),
    ]);
}
