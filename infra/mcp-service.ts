// McpService: an MCP server on ECS Fargate behind mcp-sidecar, with the AWS Secrets Manager Agent
// beside it. Give it three images (two for a stdio server, which runs inside the sidecar's
// container) and a network; it makes the secrets, IAM, logs, task definition,
// ALB, service and autoscaling. The constructor checks its arguments, applies the defaults, and
// hands off to one small function per part (parts/), as awsx's fargateTaskDefinition does. The
// resources whose properties matter are plain @pulumi/aws ones (awsx components are opaque in
// tests); the numbers come from plan.ts.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { ReadyProbeKind } from "../proxy/config.ts";
import { createLogGroups, createRoles, servedSecretArns } from "./parts/iam.ts";
import { createLoadBalancing } from "./parts/load-balancer.ts";
import { createTaskSecrets, readApiKeyCommand } from "./parts/secrets.ts";
import { createService } from "./parts/service.ts";
import { createTaskDefinition } from "./parts/task.ts";
import { readiness } from "./plan/sidecar-env.ts";
import {
  type Architecture,
  type AuthSetting,
  type InjectedHeader,
  PlanError,
  planTiming,
  SERVICE_DEFAULTS,
  type ServerContainer,
  type StdioServer,
  serviceProblems,
  serviceShape,
  sessionRoutingOfShape,
  sidecarMemoryPlan,
  stdioPlanOf,
} from "./plan.ts";

export type { AuthSetting } from "./plan.ts";
export interface McpServiceArgs {
  readonly sidecarImage: pulumi.Input<string>;
  readonly agentImage: pulumi.Input<string>;
  /**
   * The agent image's exec-form health check (without "CMD"). Default: agent/Dockerfile's
   * agent-probe. null: the image has none (the upstream agent image is FROM scratch), so the
   * sidecar waits only for the agent to start and its readiness covers the rest.
   */
  readonly agentHealthCheckCommand?: readonly string[] | null;
  /**
   * The MCP server: an HTTP server's container (the reference server, or any server image: that is
   * the point), or a stdio server (`stdio`: its command line), which the sidecar runs as children
   * inside its own container, one per session: sidecarImage must then hold the server too (build it
   * FROM the sidecar image, examples/stdio-server/Dockerfile).
   */
  readonly server: HttpServerArgs | StdioServer;
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
  /**
   * Default 4; with a stdio server, minCount unless `server.stateless` (its sessions live in one
   * task's children and are not routed across tasks).
   */
  readonly maxCount?: number;
  readonly targetCpuPercent?: number;
  readonly healthCheckGraceSeconds?: number;
  readonly albIdleTimeoutSeconds?: number;
  readonly auth: AuthSetting;
  readonly injectHeaders?: readonly InjectedHeader[];
  readonly kmsKeyArn?: string | undefined;
  readonly logRetentionDays?: number;
  readonly logLevel?: string;
  /** Where the server serves MCP (Streamable HTTP): the `url` output ends with it. */
  readonly mcpPath?: string;
  /**
   * How the sidecar's readiness checks the server: mcp (a JSON-RPC ping POSTed to readyProbePath),
   * http (a GET of readyProbePath answers 2xx), tcp (a connect), for a server that does not serve
   * MCP over HTTP at mcpPath.
   */
  readonly readyProbe?: ReadyProbeKind;
  /** The path the mcp or http probe requests; default: mcpPath. Not with the tcp probe. */
  readonly readyProbePath?: string;
  /**
   * Further options of the sidecar by flag name without dashes (`{ "ready-cache": "5s" }`), passed as
   * MCP_SIDECAR_* variables; the ones the component sets itself are refused, naming their setting.
   */
  readonly sidecarOptions?: Readonly<Record<string, string>>;
  /**
   * The sidecar container's hard memory limit in MiB; V8's heap is sized under it and the task's
   * memory must leave the server and the agent room beside it (plan/memory.ts).
   */
  readonly sidecarMemory?: number;
  /**
   * Route each MCP session to the task that owns it and continue it when a deploy replaces that
   * task (the sidecar's --session-routing, docs/scaling.md). Default: on when maxCount > 1 and the
   * server keeps sessions (not server.stateless).
   */
  readonly sessionRouting?: boolean;
}

export type HttpServerArgs = Omit<ServerContainer, "image"> & { readonly image: pulumi.Input<string> };

type Defaulted = keyof typeof SERVICE_DEFAULTS;

/** The arguments with SERVICE_DEFAULTS applied to what was left out. */
type ResolvedArgs = Omit<McpServiceArgs, Defaulted | "desiredCount" | "injectHeaders" | "sidecarOptions"> & {
  readonly [K in Defaulted]-?: (typeof SERVICE_DEFAULTS)[K];
} & {
  readonly desiredCount: number;
  readonly injectHeaders: readonly InjectedHeader[];
  readonly sidecarOptions: Readonly<Record<string, string>>;
};

function withDefaults(args: McpServiceArgs): ResolvedArgs {
  const given = Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined));
  const minCount = args.minCount ?? SERVICE_DEFAULTS.minCount;
  return {
    ...SERVICE_DEFAULTS,
    ...given,
    desiredCount: args.desiredCount ?? minCount,
    injectHeaders: args.injectHeaders ?? [],
    sidecarOptions: args.sidecarOptions ?? {},
  } as ResolvedArgs;
}

export class McpService extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly clusterName: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  readonly taskDefinitionArn: pulumi.Output<string>;
  readonly tokenSecretArn: pulumi.Output<string>;
  readonly apiKeySecretArn: pulumi.Output<string | undefined>;
  /** The session token key's secret, when the tasks route sessions. */
  readonly sessionKeySecretArn: pulumi.Output<string | undefined>;
  readonly readApiKeyCommand: pulumi.Output<string | undefined>;

  constructor(name: string, args: McpServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    // Conflicting or impossible arguments fail first, all named together, before anything is
    // registered.
    const resolved = withDefaults(args);
    const stdio = "stdio" in resolved.server ? resolved.server : undefined;
    const shape = serviceShape({
      ...resolved,
      // Unset, serviceShape defaults it (a stdio server's is its minCount).
      maxCount: args.maxCount,
      serverPort: "stdio" in resolved.server ? undefined : resolved.server.port,
      serverEnvironment: resolved.server.environment,
      stdio,
      statelessServer: resolved.server.stateless === true,
    });
    const problems = serviceProblems(shape);
    // Readiness of a stdio server is whether its children start: there is no server to probe.
    if (stdio && (args.readyProbe !== undefined || args.readyProbePath !== undefined))
      problems.push(
        "readyProbe/readyProbePath are for an HTTP server: a stdio server's readiness is whether its children start",
      );
    if (problems.length > 0) throw new PlanError(problems);
    const timing = planTiming(shape.drainSeconds, undefined, shape.albIdleTimeoutSeconds);
    super("mcp-sidecar:index:McpService", name, {}, opts);
    const child = { parent: this };

    const routing = sessionRoutingOfShape(shape);
    const secrets = createTaskSecrets(name, resolved.auth, child, routing);
    const logGroups = createLogGroups(name, resolved.logRetentionDays, child, {
      server: stdio === undefined,
    });
    const roles = createRoles(
      name,
      {
        tokenSecretArn: secrets.tokenSecret.arn,
        servedSecretArns: servedSecretArns(
          secrets.apiKeySecretArn,
          [
            ...resolved.injectHeaders.map((h) => h.secretArn),
            ...(stdio?.secretEnvironment ?? []).map((s) => s.secretArn),
          ],
          secrets.sessionKeySecretArn,
        ),
        kmsKeyArn: resolved.kmsKeyArn,
      },
      child,
    );
    const taskDefinition = createTaskDefinition(
      name,
      {
        timing,
        architecture: resolved.architecture,
        cpu: shape.cpu,
        memory: shape.memory,
        sidecarImage: resolved.sidecarImage,
        agentImage: resolved.agentImage,
        agentHealthCheckCommand: resolved.agentHealthCheckCommand,
        server: stdioPlanOf(shape) ?? (resolved.server as HttpServerArgs),
        tokenSecretArn: secrets.tokenSecret.arn,
        apiKeySecretArn: secrets.apiKeySecretArn,
        injectHeaders: resolved.injectHeaders,
        logGroups,
        logLevel: resolved.logLevel,
        readiness: readiness(resolved.readyProbe, resolved.readyProbePath, resolved.mcpPath),
        sidecarOptions: resolved.sidecarOptions,
        sidecarMemory: sidecarMemoryPlan(shape.sidecarMemory),
        roles,
        routing:
          secrets.sessionKeySecretArn === undefined
            ? undefined
            : {
                sessionSecretArn: secrets.sessionKeySecretArn,
                // Sessions are only ever forwarded inside the VPC (the sidecar's SSRF guard).
                peerCidr: aws.ec2.getVpcOutput({ id: resolved.vpcId }, child).cidrBlock,
              },
        maxTasks: shape.maxCount,
      },
      child,
    );
    const ingress = createLoadBalancing(
      name,
      {
        vpcId: resolved.vpcId,
        publicSubnetIds: resolved.publicSubnetIds,
        allowedCidrs: resolved.allowedCidrs,
        certificateArn: resolved.certificateArn,
        timing,
        taskToTask: routing,
      },
      child,
    );
    const { cluster, service } = createService(
      name,
      {
        taskDefinition,
        targetGroup: ingress.targetGroup,
        taskSecurityGroup: ingress.taskSecurityGroup,
        subnetIds: resolved.assignPublicIp ? resolved.publicSubnetIds : resolved.privateSubnetIds,
        assignPublicIp: resolved.assignPublicIp,
        minCount: shape.minCount,
        maxCount: shape.maxCount,
        desiredCount: shape.desiredCount,
        targetCpuPercent: resolved.targetCpuPercent,
        healthCheckGraceSeconds: resolved.healthCheckGraceSeconds,
        // What the tasks need in place before the first one starts.
        prerequisites: [...secrets.prerequisites, ...roles.prerequisites, ...ingress.prerequisites],
      },
      child,
    );

    const apiKeySecretArn = secrets.apiKeySecretArn;
    this.url = pulumi.interpolate`${resolved.certificateArn ? "https" : "http"}://${ingress.loadBalancer.dnsName}${resolved.mcpPath}`;
    this.clusterName = cluster.name;
    this.serviceName = service.name;
    this.taskDefinitionArn = taskDefinition.arn;
    this.tokenSecretArn = secrets.tokenSecret.arn;
    this.apiKeySecretArn = apiKeySecretArn ?? pulumi.output(undefined);
    this.sessionKeySecretArn = secrets.sessionKeySecretArn ?? pulumi.output(undefined);
    this.readApiKeyCommand = readApiKeyCommand(apiKeySecretArn, child);
    this.registerOutputs({
      url: this.url,
      clusterName: this.clusterName,
      serviceName: this.serviceName,
      tokenSecretArn: this.tokenSecretArn,
      apiKeySecretArn: this.apiKeySecretArn,
    });
  }
}
