// McpService: an MCP server on ECS Fargate behind mcp-sidecar, with the AWS Secrets Manager Agent
// beside it. Give it three images and a network; it makes the secrets, IAM, logs, task definition,
// ALB, service and autoscaling. The resources whose properties matter are plain @pulumi/aws ones
// (awsx components are opaque in tests); the numbers come from plan.ts.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import {
  type Architecture,
  CONTAINER_NAMES,
  containerDefinitions,
  executionRoleSecretsPolicy,
  type InjectedHeader,
  METRICS_PORT,
  PlanError,
  planTiming,
  type ServerContainer,
  type ServiceShape,
  SIDECAR_PORT,
  serviceProblems,
  taskRolePolicy,
} from "./plan.ts";

export type AuthSetting =
  /** The stack creates the client API key as a Secrets Manager secret with a random value. */
  | { readonly mode: "create" }
  /** An existing secret holds the API key. */
  | { readonly mode: "existing"; readonly secretArn: string }
  /** No API key: only for a deployment reachable from a private network. */
  | { readonly mode: "disabled" };

export interface McpServiceArgs {
  readonly sidecarImage: pulumi.Input<string>;
  readonly agentImage: pulumi.Input<string>;
  /**
   * The agent image's exec-form health check (without "CMD"). Default: agent/Dockerfile's
   * agent-probe. null: the image has none (the upstream agent image is FROM scratch), so the
   * sidecar waits only for the agent to start and its readiness covers the rest.
   */
  readonly agentHealthCheckCommand?: readonly string[] | null;
  /** The MCP server container: the reference server, or any server image (that is the point). */
  readonly server: Omit<ServerContainer, "image"> & { readonly image: pulumi.Input<string> };
  readonly vpcId: pulumi.Input<string>;
  readonly publicSubnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly privateSubnetIds: pulumi.Input<pulumi.Input<string>[]>;
  /** Tasks in public subnets with a public IP (cheap dev stacks without NAT). */
  readonly assignPublicIp?: boolean;
  /** Who may reach the load balancer. */
  readonly allowedCidrs: readonly string[];
  /** HTTPS on 443 (and HTTP redirected to it) when set; plain HTTP on 80 otherwise. */
  readonly certificateArn?: string | undefined;
  readonly drainSeconds?: number;
  readonly architecture?: Architecture;
  readonly cpu?: number;
  readonly memory?: number;
  readonly desiredCount?: number;
  readonly minCount?: number;
  readonly maxCount?: number;
  readonly targetCpuPercent?: number;
  readonly healthCheckGraceSeconds?: number;
  readonly albIdleTimeoutSeconds?: number;
  readonly auth: AuthSetting;
  readonly injectHeaders?: readonly InjectedHeader[];
  readonly kmsKeyArn?: string | undefined;
  readonly logRetentionDays?: number;
  readonly logLevel?: string;
}

/** The component's arguments with its defaults applied, as the plan checks them. */
function shapeOf(args: McpServiceArgs): ServiceShape {
  const minCount = args.minCount ?? 1;
  return {
    cpu: args.cpu ?? 512,
    memory: args.memory ?? 1024,
    minCount,
    maxCount: args.maxCount ?? 4,
    desiredCount: args.desiredCount ?? minCount,
    allowedCidrs: args.allowedCidrs,
    auth: args.auth,
    serverPort: args.server.port,
    drainSeconds: args.drainSeconds ?? 25,
    ...(args.albIdleTimeoutSeconds !== undefined
      ? { albIdleTimeoutSeconds: args.albIdleTimeoutSeconds }
      : {}),
  };
}

export class McpService extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly clusterName: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  readonly taskDefinitionArn: pulumi.Output<string>;
  readonly tokenSecretArn: pulumi.Output<string>;
  readonly apiKeySecretArn: pulumi.Output<string | undefined>;
  readonly readApiKeyCommand: pulumi.Output<string | undefined>;

  static #validate(args: McpServiceArgs): ReturnType<typeof planTiming> {
    const shape = shapeOf(args);
    const problems = serviceProblems(shape);
    if (problems.length > 0) throw new PlanError(problems);
    return planTiming(shape.drainSeconds, undefined, shape.albIdleTimeoutSeconds);
  }

  constructor(name: string, args: McpServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    // Conflicting or impossible arguments fail first, all named together, before anything is
    // registered.
    const timing = McpService.#validate(args);
    super("mcp-sidecar:index:McpService", name, {}, opts);
    const child = { parent: this };
    const region = aws.getRegionOutput({}, child).region;
    const architecture = args.architecture ?? "ARM64";

    // ---- secrets: the agent's SSRF token, and the clients' API key ----
    const token = new random.RandomPassword(`${name}-agent-token`, { length: 48, special: false }, child);
    const tokenSecret = new aws.secretsmanager.Secret(
      `${name}-agent-token`,
      {
        description: "SSRF token shared by the Secrets Manager Agent and mcp-sidecar in one task",
        recoveryWindowInDays: 0,
      },
      child,
    );
    // What the tasks need in place before the first one starts: the service depends on them.
    const taskPrerequisites: pulumi.Resource[] = [];
    taskPrerequisites.push(
      new aws.secretsmanager.SecretVersion(
        `${name}-agent-token`,
        { secretId: tokenSecret.id, secretString: token.result },
        child,
      ),
    );

    let apiKeySecretArn: pulumi.Output<string> | undefined;
    if (args.auth.mode === "create") {
      const key = new random.RandomPassword(`${name}-api-key`, { length: 40, special: false }, child);
      const secret = new aws.secretsmanager.Secret(
        `${name}-api-key`,
        {
          description:
            "Clients of this MCP service send it as Authorization: Bearer <value>; rotate it and the running tasks follow",
        },
        child,
      );
      taskPrerequisites.push(
        new aws.secretsmanager.SecretVersion(
          `${name}-api-key`,
          { secretId: secret.id, secretString: key.result },
          child,
        ),
      );
      apiKeySecretArn = secret.arn;
    } else if (args.auth.mode === "existing") {
      apiKeySecretArn = pulumi.output(args.auth.secretArn);
    }
    const injectHeaders = args.injectHeaders ?? [];

    // ---- logs ----
    const logGroup = (container: string) =>
      new aws.cloudwatch.LogGroup(
        `${name}-${container}`,
        { name: `/mcp-sidecar/${name}/${container}`, retentionInDays: args.logRetentionDays ?? 30 },
        child,
      );
    const logGroups = {
      agent: logGroup(CONTAINER_NAMES.agent),
      server: logGroup(CONTAINER_NAMES.server),
      sidecar: logGroup(CONTAINER_NAMES.sidecar),
    };

    // ---- IAM ----
    const assume = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" },
      ],
    });
    const executionRole = new aws.iam.Role(`${name}-execution`, { assumeRolePolicy: assume }, child);
    taskPrerequisites.push(
      new aws.iam.RolePolicyAttachment(
        `${name}-execution`,
        {
          role: executionRole.name,
          policyArn: "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
        },
        child,
      ),
      new aws.iam.RolePolicy(
        `${name}-execution-token`,
        {
          role: executionRole.id,
          policy: tokenSecret.arn.apply((arn) => JSON.stringify(executionRoleSecretsPolicy(arn))),
        },
        child,
      ),
    );
    const taskRole = new aws.iam.Role(`${name}-task`, { assumeRolePolicy: assume }, child);
    // The agent runs as the task role: it may read exactly the secrets this task serves.
    if (apiKeySecretArn !== undefined || injectHeaders.length > 0) {
      const taskSecrets = new aws.iam.RolePolicy(
        `${name}-task-secrets`,
        {
          role: taskRole.id,
          policy: pulumi
            .output(apiKeySecretArn)
            .apply((apiKey) =>
              JSON.stringify(
                taskRolePolicy(
                  [...(apiKey ? [apiKey] : []), ...injectHeaders.map((h) => h.secretArn)],
                  args.kmsKeyArn,
                ),
              ),
            ),
        },
        child,
      );
      taskPrerequisites.push(taskSecrets);
    }

    // ---- the task ----
    const containers = pulumi
      .all({
        sidecarImage: args.sidecarImage,
        agentImage: args.agentImage,
        serverImage: args.server.image,
        tokenArn: tokenSecret.arn,
        apiKeyArn: apiKeySecretArn ?? pulumi.output(""),
        regionName: region,
        agentLogs: logGroups.agent.name,
        serverLogs: logGroups.server.name,
        sidecarLogs: logGroups.sidecar.name,
      })
      .apply((resolved) => {
        // Every value is known by the time the task definition is created.
        const v = resolved as unknown as {
          sidecarImage: string;
          agentImage: string;
          serverImage: string;
          tokenArn: string;
          apiKeyArn: string;
          regionName: string;
          agentLogs: string;
          serverLogs: string;
          sidecarLogs: string;
        };
        return JSON.stringify(
          containerDefinitions({
            region: v.regionName,
            timing,
            sidecarImage: v.sidecarImage,
            agentImage: v.agentImage,
            ...(args.agentHealthCheckCommand !== undefined
              ? { agentHealthCheckCommand: args.agentHealthCheckCommand }
              : {}),
            server: { ...args.server, image: v.serverImage },
            sidecarPort: SIDECAR_PORT,
            metricsPort: METRICS_PORT,
            tokenSecretArn: v.tokenArn,
            apiKeySecretArn: v.apiKeyArn || undefined,
            injectHeaders,
            logGroups: { agent: v.agentLogs, server: v.serverLogs, sidecar: v.sidecarLogs },
            logLevel: args.logLevel ?? "info",
          }),
        );
      });
    const taskDefinition = new aws.ecs.TaskDefinition(
      `${name}`,
      {
        family: name,
        cpu: String(args.cpu ?? 512),
        memory: String(args.memory ?? 1024),
        networkMode: "awsvpc",
        requiresCompatibilities: ["FARGATE"],
        runtimePlatform: { cpuArchitecture: architecture, operatingSystemFamily: "LINUX" },
        executionRoleArn: executionRole.arn,
        taskRoleArn: taskRole.arn,
        containerDefinitions: containers,
      },
      child,
    );

    // ---- network ----
    const albSecurityGroup = new aws.ec2.SecurityGroup(
      `${name}-alb`,
      {
        vpcId: args.vpcId,
        description: "mcp-sidecar load balancer: from the allowed CIDRs only",
        ingress: [80, ...(args.certificateArn ? [443] : [])].map((port) => ({
          protocol: "tcp",
          fromPort: port,
          toPort: port,
          cidrBlocks: [...args.allowedCidrs],
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
      child,
    );
    const taskSecurityGroup = new aws.ec2.SecurityGroup(
      `${name}-task`,
      {
        vpcId: args.vpcId,
        description: "mcp-sidecar tasks: the sidecar port from the load balancer only",
        ingress: [
          {
            protocol: "tcp",
            fromPort: SIDECAR_PORT,
            toPort: SIDECAR_PORT,
            securityGroups: [albSecurityGroup.id],
            description: "sidecar from the ALB",
          },
        ],
        // Image pulls, Secrets Manager, CloudWatch Logs and whatever the MCP server calls out to.
        egress: [
          { protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], description: "outbound" },
        ],
      },
      child,
    );
    const loadBalancer = new aws.lb.LoadBalancer(
      `${name}`,
      {
        loadBalancerType: "application",
        internal: false,
        subnets: args.publicSubnetIds,
        securityGroups: [albSecurityGroup.id],
        idleTimeout: timing.albIdleTimeoutSeconds,
      },
      child,
    );
    const targetGroup = new aws.lb.TargetGroup(
      `${name}`,
      {
        vpcId: args.vpcId,
        targetType: "ip",
        protocol: "HTTP",
        port: SIDECAR_PORT,
        deregistrationDelay: timing.deregistrationDelaySeconds,
        healthCheck: {
          path: "/ready",
          matcher: "200",
          interval: 10,
          timeout: 5,
          healthyThreshold: 2,
          unhealthyThreshold: 2,
        },
      },
      child,
    );
    // ECS refuses a service whose target group no listener uses yet.
    if (args.certificateArn) {
      const https = new aws.lb.Listener(
        `${name}-https`,
        {
          loadBalancerArn: loadBalancer.arn,
          port: 443,
          protocol: "HTTPS",
          sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
          certificateArn: args.certificateArn,
          defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
        },
        child,
      );
      taskPrerequisites.push(https);
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
        child,
      );
    } else {
      taskPrerequisites.push(
        new aws.lb.Listener(
          `${name}-http`,
          {
            loadBalancerArn: loadBalancer.arn,
            port: 80,
            protocol: "HTTP",
            defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
          },
          child,
        ),
      );
    }

    // ---- the service ----
    const cluster = new aws.ecs.Cluster(
      `${name}`,
      { settings: [{ name: "containerInsights", value: "enabled" }] },
      child,
    );
    const minCount = args.minCount ?? 1;
    const service = new aws.ecs.Service(
      `${name}`,
      {
        cluster: cluster.arn,
        taskDefinition: taskDefinition.arn,
        launchType: "FARGATE",
        desiredCount: args.desiredCount ?? minCount,
        deploymentMinimumHealthyPercent: 100,
        deploymentMaximumPercent: 200,
        deploymentCircuitBreaker: { enable: true, rollback: true },
        healthCheckGracePeriodSeconds: args.healthCheckGraceSeconds ?? 60,
        networkConfiguration: {
          subnets: args.assignPublicIp ? args.publicSubnetIds : args.privateSubnetIds,
          securityGroups: [taskSecurityGroup.id],
          assignPublicIp: args.assignPublicIp ?? false,
        },
        loadBalancers: [
          {
            targetGroupArn: targetGroup.arn,
            containerName: CONTAINER_NAMES.sidecar,
            containerPort: SIDECAR_PORT,
          },
        ],
        // `pulumi up` fails when the deployment does (the circuit breaker rolled it back), rather
        // than reporting success for a service that never became healthy.
        waitForSteadyState: true,
      },
      // Autoscaling owns the count after creation.
      { ...child, dependsOn: taskPrerequisites, ignoreChanges: ["desiredCount"] },
    );
    const scalingTarget = new aws.appautoscaling.Target(
      `${name}`,
      {
        serviceNamespace: "ecs",
        scalableDimension: "ecs:service:DesiredCount",
        resourceId: pulumi.interpolate`service/${cluster.name}/${service.name}`,
        minCapacity: minCount,
        maxCapacity: args.maxCount ?? 4,
      },
      child,
    );
    new aws.appautoscaling.Policy(
      `${name}-cpu`,
      {
        policyType: "TargetTrackingScaling",
        serviceNamespace: scalingTarget.serviceNamespace,
        scalableDimension: scalingTarget.scalableDimension,
        resourceId: scalingTarget.resourceId,
        targetTrackingScalingPolicyConfiguration: {
          targetValue: args.targetCpuPercent ?? 60,
          predefinedMetricSpecification: { predefinedMetricType: "ECSServiceAverageCPUUtilization" },
          scaleInCooldown: 120,
          scaleOutCooldown: 60,
        },
      },
      child,
    );

    this.url = pulumi.interpolate`${args.certificateArn ? "https" : "http"}://${loadBalancer.dnsName}/mcp`;
    this.clusterName = cluster.name;
    this.serviceName = service.name;
    this.taskDefinitionArn = taskDefinition.arn;
    this.tokenSecretArn = tokenSecret.arn;
    this.apiKeySecretArn = apiKeySecretArn ?? pulumi.output(undefined);
    this.readApiKeyCommand = apiKeySecretArn
      ? pulumi.interpolate`aws secretsmanager get-secret-value --secret-id ${apiKeySecretArn} --query SecretString --output text`
      : pulumi.output(undefined);
    this.registerOutputs({
      url: this.url,
      clusterName: this.clusterName,
      serviceName: this.serviceName,
      tokenSecretArn: this.tokenSecretArn,
      apiKeySecretArn: this.apiKeySecretArn,
    });
  }
}
