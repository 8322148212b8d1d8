// The task definition: the containers of plan/containers.ts, on Fargate, once every image
// reference, ARN and log group name is known.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  containerDefinitions,
  type InjectedHeader,
  isStdioPlan,
  type ServerContainer,
  type StdioPlan,
} from "../plan/containers.ts";
import type { SidecarMemory } from "../plan/memory.ts";
import type { Readiness } from "../plan/sidecar-env.ts";
import { type Architecture, METRICS_PORT, SIDECAR_PORT, type Timing } from "../plan.ts";
import type { LogGroups, TaskRoles } from "./iam.ts";

export interface TaskInput {
  readonly timing: Timing;
  readonly architecture: Architecture;
  readonly cpu: number;
  readonly memory: number;
  readonly sidecarImage: pulumi.Input<string>;
  readonly agentImage: pulumi.Input<string>;
  readonly agentHealthCheckCommand: readonly string[] | null | undefined;
  readonly server: (Omit<ServerContainer, "image"> & { readonly image: pulumi.Input<string> }) | StdioPlan;
  readonly tokenSecretArn: pulumi.Output<string>;
  readonly apiKeySecretArn: pulumi.Output<string> | undefined;
  readonly injectHeaders: readonly InjectedHeader[];
  readonly logGroups: LogGroups;
  readonly logLevel: string;
  readonly readiness: Readiness;
  readonly sidecarOptions: Readonly<Record<string, string>>;
  readonly sidecarMemory: SidecarMemory;
  readonly roles: TaskRoles;
  /** Session routing across the tasks, when on: the key's secret and the VPC's CIDR. */
  readonly routing:
    | { readonly sessionSecretArn: pulumi.Output<string>; readonly peerCidr: pulumi.Output<string> }
    | undefined;
  readonly maxTasks: number;
}

export function createTaskDefinition(
  name: string,
  input: TaskInput,
  opts: pulumi.CustomResourceOptions,
): aws.ecs.TaskDefinition {
  const region = aws.getRegionOutput({}, opts).region;
  const values = {
    sidecarImage: input.sidecarImage,
    agentImage: input.agentImage,
    serverImage: isStdioPlan(input.server) ? pulumi.output("") : input.server.image,
    tokenArn: input.tokenSecretArn,
    apiKeyArn: input.apiKeySecretArn ?? pulumi.output(""),
    regionName: region,
    agentLogs: input.logGroups.agent.name,
    serverLogs: input.logGroups.server?.name ?? pulumi.output(""),
    sidecarLogs: input.logGroups.sidecar.name,
    sessionSecretArn: input.routing?.sessionSecretArn ?? pulumi.output(""),
    peerCidr: input.routing?.peerCidr ?? pulumi.output(""),
  };
  const containers = pulumi.all(values).apply((resolved) => {
    // Every value is known by the time the task definition is created.
    const v = resolved as unknown as Record<keyof typeof values, string>;
    return JSON.stringify(
      containerDefinitions({
        region: v.regionName,
        timing: input.timing,
        sidecarImage: v.sidecarImage,
        agentImage: v.agentImage,
        ...(input.agentHealthCheckCommand !== undefined
          ? { agentHealthCheckCommand: input.agentHealthCheckCommand }
          : {}),
        server: isStdioPlan(input.server) ? input.server : { ...input.server, image: v.serverImage },
        sidecarPort: SIDECAR_PORT,
        metricsPort: METRICS_PORT,
        tokenSecretArn: v.tokenArn,
        apiKeySecretArn: v.apiKeyArn || undefined,
        injectHeaders: input.injectHeaders,
        logGroups: { agent: v.agentLogs, server: v.serverLogs, sidecar: v.sidecarLogs },
        logLevel: input.logLevel,
        readiness: input.readiness,
        sidecarOptions: input.sidecarOptions,
        sidecarMemory: input.sidecarMemory,
        routing: input.routing && { sessionSecretArn: v.sessionSecretArn, peerCidr: v.peerCidr },
        maxTasks: input.maxTasks,
      }),
    );
  });
  return new aws.ecs.TaskDefinition(
    `${name}`,
    {
      family: name,
      cpu: String(input.cpu),
      memory: String(input.memory),
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      runtimePlatform: { cpuArchitecture: input.architecture, operatingSystemFamily: "LINUX" },
      executionRoleArn: input.roles.executionRole.arn,
      taskRoleArn: input.roles.taskRole.arn,
      containerDefinitions: containers,
    },
    opts,
  );
}
