// The way in: an internet-facing ALB open to the allowed CIDRs only, its target group checking the
// sidecar's /ready, HTTPS when a certificate is given (HTTP then redirects), and the tasks' security
// group that takes the sidecar port from the ALB alone.

import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import { SIDECAR_PORT, type Timing } from "../plan.ts";

export interface LoadBalancingInput {
  readonly vpcId: pulumi.Input<string>;
  readonly publicSubnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly allowedCidrs: readonly string[];
  readonly certificateArn: string | undefined;
  readonly timing: Timing;
  /** The tasks forward sessions to each other (session routing): the sidecar port from themselves too. */
  readonly taskToTask: boolean;
}

export interface LoadBalancing {
  readonly taskSecurityGroup: aws.ec2.SecurityGroup;
  readonly loadBalancer: aws.lb.LoadBalancer;
  readonly targetGroup: aws.lb.TargetGroup;
  /** The listener that forwards to the target group: ECS refuses a service whose group none uses. */
  readonly prerequisites: pulumi.Resource[];
}

export function createLoadBalancing(
  name: string,
  input: LoadBalancingInput,
  opts: pulumi.CustomResourceOptions,
): LoadBalancing {
  const albSecurityGroup = new aws.ec2.SecurityGroup(
    `${name}-alb`,
    {
      vpcId: input.vpcId,
      description: "mcp-sidecar load balancer: from the allowed CIDRs only",
      ingress: [80, ...(input.certificateArn ? [443] : [])].map((port) => ({
        protocol: "tcp",
        fromPort: port,
        toPort: port,
        cidrBlocks: [...input.allowedCidrs],
        description: `HTTP${port === 443 ? "S" : ""} from the allowed CIDRs`,
      })),
      egress: [
        {
          protocol: "tcp",
          fromPort: SIDECAR_PORT,
          toPort: SIDECAR_PORT,
          cidrBlocks: ["0.0.0.0/0"],
          description: "to the tasks' sidecar port",
        },
      ],
    },
    opts,
  );
  const taskSecurityGroup = new aws.ec2.SecurityGroup(
    `${name}-task`,
    {
      vpcId: input.vpcId,
      description: "mcp-sidecar tasks: the sidecar port from the load balancer only",
      ingress: [
        {
          protocol: "tcp",
          fromPort: SIDECAR_PORT,
          toPort: SIDECAR_PORT,
          securityGroups: [albSecurityGroup.id],
          description: "sidecar from the ALB",
        },
        ...(input.taskToTask
          ? [
              {
                protocol: "tcp",
                fromPort: SIDECAR_PORT,
                toPort: SIDECAR_PORT,
                self: true,
                description: "sidecar from the other tasks (session routing)",
              },
            ]
          : []),
      ],
      // Image pulls, Secrets Manager, CloudWatch Logs and whatever the MCP server calls out to.
      egress: [
        { protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], description: "outbound" },
      ],
    },
    opts,
  );
  const loadBalancer = new aws.lb.LoadBalancer(
    `${name}`,
    {
      loadBalancerType: "application",
      internal: false,
      subnets: input.publicSubnetIds,
      securityGroups: [albSecurityGroup.id],
      idleTimeout: input.timing.albIdleTimeoutSeconds,
    },
    opts,
  );
  const targetGroup = new aws.lb.TargetGroup(
    `${name}`,
    {
      vpcId: input.vpcId,
      targetType: "ip",
      protocol: "HTTP",
      port: SIDECAR_PORT,
      deregistrationDelay: input.timing.deregistrationDelaySeconds,
      healthCheck: {
        path: "/ready",
        matcher: "200",
        interval: 10,
        timeout: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
      },
    },
    opts,
  );
  const forward = [{ type: "forward", targetGroupArn: targetGroup.arn }];
  let forwarding: aws.lb.Listener;
  if (input.certificateArn) {
    forwarding = new aws.lb.Listener(
      `${name}-https`,
      {
        loadBalancerArn: loadBalancer.arn,
        port: 443,
        protocol: "HTTPS",
        sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
        certificateArn: input.certificateArn,
        defaultActions: forward,
      },
      opts,
    );
    new aws.lb.Listener(
      `${name}-http`,
      {
        loadBalancerArn: loadBalancer.arn,
        port: 80,
        protocol: "HTTP",
        defaultActions: [
          { type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } },
        ],
      },
      opts,
    );
  } else {
    forwarding = new aws.lb.Listener(
      `${name}-http`,
      { loadBalancerArn: loadBalancer.arn, port: 80, protocol: "HTTP", defaultActions: forward },
      opts,
    );
  }
  return { taskSecurityGroup, loadBalancer, targetGroup, prerequisites: [forwarding] };
}
