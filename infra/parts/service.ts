// The Fargate service and its autoscaling: rolling deploys that keep every task until its
// replacement is healthy (100/200), rolled back by the circuit breaker, and a CPU target.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { CONTAINER_NAMES, SIDECAR_PORT } from "../plan.ts";

export interface ServiceInput {
  readonly taskDefinition: aws.ecs.TaskDefinition;
  readonly targetGroup: aws.lb.TargetGroup;
  readonly taskSecurityGroup: aws.ec2.SecurityGroup;
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly assignPublicIp: boolean;
  readonly minCount: number;
  readonly maxCount: number;
  readonly desiredCount: number;
  readonly targetCpuPercent: number;
  readonly healthCheckGraceSeconds: number;
  /** What must exist before the first task starts (secret versions, grants, the listener). */
  readonly prerequisites: readonly pulumi.Resource[];
}

export interface RunningService {
  readonly cluster: aws.ecs.Cluster;
  readonly service: aws.ecs.Service;
}

export function createService(
  name: string,
  input: ServiceInput,
  opts: pulumi.CustomResourceOptions,
): RunningService {
  const cluster = new aws.ecs.Cluster(
    `${name}`,
    { settings: [{ name: "containerInsights", value: "enabled" }] },
    opts,
  );
  const service = new aws.ecs.Service(
    `${name}`,
    {
      cluster: cluster.arn,
      taskDefinition: input.taskDefinition.arn,
      launchType: "FARGATE",
      desiredCount: input.desiredCount,
      deploymentMinimumHealthyPercent: 100,
      deploymentMaximumPercent: 200,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriodSeconds: input.healthCheckGraceSeconds,
      networkConfiguration: {
        subnets: input.subnetIds,
        securityGroups: [input.taskSecurityGroup.id],
        assignPublicIp: input.assignPublicIp,
      },
      loadBalancers: [
        {
          targetGroupArn: input.targetGroup.arn,
          containerName: CONTAINER_NAMES.sidecar,
          containerPort: SIDECAR_PORT,
        },
      ],
      // `pulumi up` fails when the deployment does (the circuit breaker rolled it back), rather
      // than reporting success for a service that never became healthy.
      waitForSteadyState: true,
    },
    // Autoscaling owns the count after creation.
    { ...opts, dependsOn: [...input.prerequisites], ignoreChanges: ["desiredCount"] },
  );
  const scalingTarget = new aws.appautoscaling.Target(
    `${name}`,
    {
      serviceNamespace: "ecs",
      scalableDimension: "ecs:service:DesiredCount",
      resourceId: pulumi.interpolate`service/${cluster.name}/${service.name}`,
      minCapacity: input.minCount,
      maxCapacity: input.maxCount,
    },
    opts,
  );
  new aws.appautoscaling.Policy(
    `${name}-cpu`,
    {
      policyType: "TargetTrackingScaling",
      serviceNamespace: scalingTarget.serviceNamespace,
      scalableDimension: scalingTarget.scalableDimension,
      resourceId: scalingTarget.resourceId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: input.targetCpuPercent,
        predefinedMetricSpecification: { predefinedMetricType: "ECSServiceAverageCPUUtilization" },
        scaleInCooldown: 120,
        scaleOutCooldown: 60,
      },
    },
    opts,
  );
  return { cluster, service };
}
