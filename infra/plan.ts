// The task-definition plan: everything ECS, the ALB and IAM will be told, computed from settings
// without creating a resource. Pure: no Pulumi, no I/O; problems are collected and thrown once
// (as awsx's subnet distributor does), so a bad stack config fails `pulumi preview` with every
// reason at once. Unit-tested in test/infra-plan.test.ts; the component (mcp-service.ts) only
// turns this plan into resources.

export class PlanError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid mcp-sidecar stack settings:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.problems = problems;
  }
}

/** Fargate stops a task with SIGKILL at most 120 s after SIGTERM. */
export const FARGATE_MAX_STOP_TIMEOUT_SECONDS = 120;
/** Time left between the sidecar's own drain timeout and ECS's SIGKILL: exit, flush logs. */
export const STOP_MARGIN_SECONDS = 5;
export const AGENT_PORT = 2773;
export const SIDECAR_PORT = 8080;
export const METRICS_PORT = 9090;
export const CONTAINER_USER = "65532:65532";
export const CONTAINER_NAMES = { agent: "secrets-agent", server: "server", sidecar: "sidecar" } as const;

export type Architecture = "ARM64" | "X86_64";

/**
 * McpService's defaults, each defined here only: the component applies them to arguments left out,
 * and stack config (Pulumi.yaml, whose descriptions quote them; a test keeps those in step) leaves a
 * key unset to get them.
 */
export const SERVICE_DEFAULTS = Object.freeze({
  architecture: "ARM64" as Architecture,
  cpu: 512,
  memory: 1024,
  minCount: 1,
  maxCount: 4,
  targetCpuPercent: 60,
  drainSeconds: 25,
  healthCheckGraceSeconds: 60,
  /** Above the sidecar's SSE keepalive (15 s), so a quiet stream is never cut. */
  albIdleTimeoutSeconds: 120,
  logRetentionDays: 30,
  logLevel: "info",
  assignPublicIp: false,
});

/** The SSE keepalive the task's sidecar is given: the sidecar's own default, --sse-keepalive 15s. */
export const SSE_KEEPALIVE_SECONDS = 15;

export interface Timing {
  /** The one drain setting: how long the sidecar lets calls finish after SIGTERM. */
  readonly drainSeconds: number;
  /** ECS stopTimeout for the sidecar: the drain plus the margin, never above Fargate's 120 s. */
  readonly stopTimeoutSeconds: number;
  /** How long the target group keeps a deregistered task's connections before ECS stops it. */
  readonly deregistrationDelaySeconds: number;
  /** ALB idle timeout: above the sidecar's SSE keepalive, so a quiet stream is never cut. */
  readonly albIdleTimeoutSeconds: number;
  readonly sseKeepaliveSeconds: number;
  /**
   * The sidecar's client keep-alive timeout: above the ALB idle timeout, so the ALB always closes an
   * idle connection first (a sidecar closing it first races a new request and the ALB answers 502).
   */
  readonly clientKeepAliveSeconds: number;
}

/**
 * One drain setting drives the sidecar's --drain-timeout, the container's stopTimeout and the
 * target group's deregistration delay. The deregistration delay runs before SIGTERM (ECS
 * deregisters first): calls in flight get that long with no new work arriving, then the drain.
 */
export function planTiming(
  drainSeconds: number,
  sseKeepaliveSeconds = SSE_KEEPALIVE_SECONDS,
  albIdleTimeoutSeconds: number = SERVICE_DEFAULTS.albIdleTimeoutSeconds,
): Timing {
  const problems: string[] = [];
  if (!Number.isInteger(drainSeconds) || drainSeconds < 1)
    problems.push(`drainSeconds ${drainSeconds} must be a whole number of seconds >= 1`);
  const stopTimeoutSeconds = drainSeconds + STOP_MARGIN_SECONDS;
  if (stopTimeoutSeconds > FARGATE_MAX_STOP_TIMEOUT_SECONDS) {
    problems.push(
      `drainSeconds ${drainSeconds} + ${STOP_MARGIN_SECONDS} s margin = stopTimeout ${stopTimeoutSeconds} s, above Fargate's maximum of ${FARGATE_MAX_STOP_TIMEOUT_SECONDS} s (use at most ${FARGATE_MAX_STOP_TIMEOUT_SECONDS - STOP_MARGIN_SECONDS})`,
    );
  }
  if (!(albIdleTimeoutSeconds > sseKeepaliveSeconds)) {
    problems.push(
      `albIdleTimeoutSeconds ${albIdleTimeoutSeconds} must be above the SSE keepalive (${sseKeepaliveSeconds} s)`,
    );
  }
  if (albIdleTimeoutSeconds < 1 || albIdleTimeoutSeconds > 4000)
    problems.push(`albIdleTimeoutSeconds ${albIdleTimeoutSeconds} is outside the ALB's 1-4000 s`);
  if (problems.length > 0) throw new PlanError(problems);
  return {
    drainSeconds,
    stopTimeoutSeconds,
    deregistrationDelaySeconds: drainSeconds,
    albIdleTimeoutSeconds,
    sseKeepaliveSeconds,
    clientKeepAliveSeconds: albIdleTimeoutSeconds + 5,
  };
}

export type AuthSetting =
  /** The stack creates the client API key as a Secrets Manager secret with a random value. */
  | { readonly mode: "create" }
  /** An existing secret holds the API key. */
  | { readonly mode: "existing"; readonly secretArn: string }
  /** No API key: only for a deployment reachable from a private network. */
  | { readonly mode: "disabled" };

/** The numbers of a service that must fit together, from stack config or the component's arguments. */
export interface ServiceShape {
  readonly cpu: number;
  readonly memory: number;
  readonly minCount: number;
  readonly maxCount: number;
  readonly desiredCount: number;
  readonly allowedCidrs: readonly string[];
  readonly auth: { readonly mode: "create" | "existing" | "disabled"; readonly secretArn?: string };
  readonly serverPort: number;
  readonly drainSeconds: number;
  readonly albIdleTimeoutSeconds: number;
}

/** What a service is given, any of its numbers left out. */
export type ServiceShapeInput = Partial<Omit<ServiceShape, "allowedCidrs" | "auth" | "serverPort">> &
  Pick<ServiceShape, "allowedCidrs" | "auth" | "serverPort">;

/** The shape with SERVICE_DEFAULTS applied to what was left out (desiredCount: minCount). */
export function serviceShape(input: ServiceShapeInput): ServiceShape {
  const minCount = input.minCount ?? SERVICE_DEFAULTS.minCount;
  return {
    cpu: input.cpu ?? SERVICE_DEFAULTS.cpu,
    memory: input.memory ?? SERVICE_DEFAULTS.memory,
    minCount,
    maxCount: input.maxCount ?? SERVICE_DEFAULTS.maxCount,
    desiredCount: input.desiredCount ?? minCount,
    allowedCidrs: input.allowedCidrs,
    auth: input.auth,
    serverPort: input.serverPort,
    drainSeconds: input.drainSeconds ?? SERVICE_DEFAULTS.drainSeconds,
    albIdleTimeoutSeconds: input.albIdleTimeoutSeconds ?? SERVICE_DEFAULTS.albIdleTimeoutSeconds,
  };
}

/** Everything wrong with a service's shape, each problem naming its setting; empty when it fits. */
export function serviceProblems(shape: ServiceShape): string[] {
  const problems = fargateSizeProblems(shape.cpu, shape.memory);
  const { minCount, maxCount, desiredCount } = shape;
  if (minCount < 1) problems.push(`minCount ${minCount} must be >= 1`);
  if (maxCount < minCount) problems.push(`maxCount ${maxCount} is below minCount ${minCount}`);
  if (desiredCount < minCount || desiredCount > maxCount)
    problems.push(`desiredCount ${desiredCount} is outside minCount..maxCount (${minCount}..${maxCount})`);
  if (shape.allowedCidrs.length === 0) problems.push("allowedCidrs is empty: nobody could reach the service");
  for (const cidr of shape.allowedCidrs)
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr))
      problems.push(`allowedCidrs: "${cidr}" is not an IPv4 CIDR`);
  // A missing ARN is the caller's to report: it knows the setting's name.
  const { secretArn } = shape.auth;
  if (shape.auth.mode === "existing" && secretArn && !secretArn.startsWith("arn:aws"))
    problems.push(`auth.secretArn "${shape.auth.secretArn}" is not an ARN`);
  if (shape.serverPort === SIDECAR_PORT || shape.serverPort === METRICS_PORT)
    problems.push(
      `server.port ${shape.serverPort} collides with the sidecar's ports (${SIDECAR_PORT}, ${METRICS_PORT})`,
    );
  // The load balancer is internet-facing whatever the tasks' subnets: only the CIDRs keep it private.
  if (shape.allowedCidrs.includes("0.0.0.0/0") && shape.auth.mode === "disabled")
    problems.push("auth is disabled while the load balancer is open to 0.0.0.0/0: refusing an open endpoint");
  try {
    planTiming(shape.drainSeconds, undefined, shape.albIdleTimeoutSeconds);
  } catch (error) {
    if (!(error instanceof PlanError)) throw error;
    problems.push(...error.problems);
  }
  return problems;
}

/** Fargate's valid cpu/memory pairs (MiB). */
export function fargateSizeProblems(cpu: number, memory: number): string[] {
  const gib = (n: number) => n * 1024;
  const range = (from: number, to: number, step: number) => {
    const values: number[] = [];
    for (let m = from; m <= to; m += step) values.push(m);
    return values;
  };
  const valid: Record<number, number[]> = {
    256: [512, 1024, 2048],
    512: range(gib(1), gib(4), gib(1)),
    1024: range(gib(2), gib(8), gib(1)),
    2048: range(gib(4), gib(16), gib(1)),
    4096: range(gib(8), gib(30), gib(1)),
    8192: range(gib(16), gib(60), gib(4)),
    16384: range(gib(32), gib(120), gib(8)),
  };
  const memories = valid[cpu];
  if (!memories) return [`cpu ${cpu} is not a Fargate size (${Object.keys(valid).join(", ")})`];
  if (!memories.includes(memory))
    return [
      `memory ${memory} MiB does not pair with cpu ${cpu} on Fargate (valid: ${memories[0]}-${memories.at(-1)} MiB)`,
    ];
  return [];
}

export interface ServerContainer {
  /** The MCP server image (by digest when the stack built it). */
  readonly image: string;
  readonly port: number;
  /** Exec-form health check command, without the leading "CMD"; none: the sidecar waits for START. */
  readonly healthCheckCommand?: readonly string[] | undefined;
  readonly environment?: Readonly<Record<string, string>> | undefined;
  /** The user it runs as; the reference server image runs as 65532. */
  readonly user?: string | undefined;
  readonly readonlyRootFilesystem?: boolean | undefined;
}

export interface InjectedHeader {
  readonly header: string;
  readonly secretArn: string;
  readonly jsonKey?: string | undefined;
}

export interface TaskPlanInput {
  readonly region: string;
  readonly timing: Timing;
  readonly sidecarImage: string;
  readonly agentImage: string;
  /**
   * Exec-form health check of the agent image (without "CMD"): agent/Dockerfile's agent-probe by
   * default; null for an agent image without one, which the sidecar then waits for only to start.
   */
  readonly agentHealthCheckCommand?: readonly string[] | null;
  readonly server: ServerContainer;
  readonly sidecarPort: number;
  readonly metricsPort: number;
  /** The SSRF token secret: handed to the agent and the sidecar through `secrets`, never as plain env. */
  readonly tokenSecretArn: string;
  /** Undefined when auth is explicitly disabled. */
  readonly apiKeySecretArn: string | undefined;
  readonly injectHeaders: readonly InjectedHeader[];
  readonly logGroups: { readonly agent: string; readonly server: string; readonly sidecar: string };
  readonly logLevel: string;
}

export interface ContainerDefinition {
  name: string;
  image: string;
  essential: boolean;
  user?: string;
  readonlyRootFilesystem?: boolean;
  portMappings?: { containerPort: number; protocol: "tcp" }[];
  environment?: { name: string; value: string }[];
  secrets?: { name: string; valueFrom: string }[];
  healthCheck?: {
    command: string[];
    interval: number;
    timeout: number;
    retries: number;
    startPeriod: number;
  };
  dependsOn?: { containerName: string; condition: "START" | "HEALTHY" }[];
  stopTimeout?: number;
  logConfiguration: { logDriver: "awslogs"; options: Record<string, string> };
}

const healthCheck = (command: readonly string[]) => ({
  command: ["CMD", ...command],
  interval: 10,
  timeout: 5,
  retries: 3,
  startPeriod: 15,
});

function logs(group: string, region: string, prefix: string): ContainerDefinition["logConfiguration"] {
  return {
    logDriver: "awslogs",
    options: { "awslogs-group": group, "awslogs-region": region, "awslogs-stream-prefix": prefix },
  };
}

/** The three containers of the task, as ECS receives them (containerDefinitions JSON). */
export function containerDefinitions(plan: TaskPlanInput): ContainerDefinition[] {
  const token = { name: "AWS_TOKEN", valueFrom: plan.tokenSecretArn };
  const agentHealthCheck =
    plan.agentHealthCheckCommand === undefined
      ? ["/usr/local/bin/agent-probe", String(AGENT_PORT)]
      : plan.agentHealthCheckCommand;
  const agent: ContainerDefinition = {
    name: CONTAINER_NAMES.agent,
    image: plan.agentImage,
    essential: true,
    user: CONTAINER_USER,
    readonlyRootFilesystem: true,
    secrets: [token],
    ...(agentHealthCheck ? { healthCheck: healthCheck(agentHealthCheck) } : {}),
    stopTimeout: plan.timing.stopTimeoutSeconds,
    logConfiguration: logs(plan.logGroups.agent, plan.region, CONTAINER_NAMES.agent),
  };
  const serverEnv = Object.entries(plan.server.environment ?? {}).map(([name, value]) => ({ name, value }));
  const server: ContainerDefinition = {
    name: CONTAINER_NAMES.server,
    image: plan.server.image,
    essential: true,
    ...(plan.server.user ? { user: plan.server.user } : {}),
    readonlyRootFilesystem: plan.server.readonlyRootFilesystem ?? true,
    // No port mapping: only the sidecar, on the task's loopback, talks to the server.
    environment: serverEnv,
    ...(plan.server.healthCheckCommand ? { healthCheck: healthCheck(plan.server.healthCheckCommand) } : {}),
    stopTimeout: plan.timing.stopTimeoutSeconds,
    logConfiguration: logs(plan.logGroups.server, plan.region, CONTAINER_NAMES.server),
  };
  const env: Record<string, string> = {
    MCP_SIDECAR_UPSTREAM: `http://127.0.0.1:${plan.server.port}`,
    MCP_SIDECAR_PORT: String(plan.sidecarPort),
    MCP_SIDECAR_HOST: "0.0.0.0",
    MCP_SIDECAR_METRICS_PORT: String(plan.metricsPort),
    MCP_SIDECAR_DRAIN_TIMEOUT: `${plan.timing.drainSeconds}s`,
    MCP_SIDECAR_SSE_KEEPALIVE: `${plan.timing.sseKeepaliveSeconds}s`,
    MCP_SIDECAR_KEEP_ALIVE_TIMEOUT: `${plan.timing.clientKeepAliveSeconds}s`,
    MCP_SIDECAR_SECRETS_AGENT: `http://127.0.0.1:${AGENT_PORT}`,
    MCP_SIDECAR_LOG_LEVEL: plan.logLevel,
  };
  // ARNs, not values: the sidecar fetches the values from the agent and follows their rotation.
  if (plan.apiKeySecretArn) env.MCP_SIDECAR_AUTH_SECRET = plan.apiKeySecretArn;
  if (plan.injectHeaders.length > 0) {
    env.MCP_SIDECAR_INJECT_HEADER = plan.injectHeaders
      .map((h) => `${h.header}=${h.secretArn}${h.jsonKey ? `#${h.jsonKey}` : ""}`)
      .join(",");
  }
  const sidecar: ContainerDefinition = {
    name: CONTAINER_NAMES.sidecar,
    image: plan.sidecarImage,
    essential: true,
    user: CONTAINER_USER,
    readonlyRootFilesystem: true,
    portMappings: [
      { containerPort: plan.sidecarPort, protocol: "tcp" },
      { containerPort: plan.metricsPort, protocol: "tcp" },
    ],
    environment: Object.entries(env).map(([name, value]) => ({ name, value })),
    secrets: [token],
    healthCheck: healthCheck(["/nodejs/bin/node", "/app/proxy/cli.ts", "healthcheck"]),
    // Shutdown order is the reverse of dependsOn: ECS stops the sidecar first, while the server and
    // the agent still answer, and stops them once the sidecar has drained.
    dependsOn: [
      {
        containerName: CONTAINER_NAMES.server,
        condition: plan.server.healthCheckCommand ? "HEALTHY" : "START",
      },
      { containerName: CONTAINER_NAMES.agent, condition: agentHealthCheck ? "HEALTHY" : "START" },
    ],
    stopTimeout: plan.timing.stopTimeoutSeconds,
    logConfiguration: logs(plan.logGroups.sidecar, plan.region, CONTAINER_NAMES.sidecar),
  };
  return [agent, server, sidecar];
}

// ---- IAM ----

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: { Sid: string; Effect: "Allow"; Action: string[]; Resource: string[] }[];
}

/** The task role (the agent's AWS identity): exactly the secrets it serves, and their KMS key. */
export function taskRolePolicy(secretArns: readonly string[], kmsKeyArn?: string): PolicyDocument {
  const unique = [...new Set(secretArns)].sort();
  if (unique.length === 0) throw new PlanError(["the task role needs at least one secret ARN"]);
  const problems = unique
    .filter((arn) => arn.includes("*") || !arn.startsWith("arn:"))
    .map((arn) => `secret ${arn} is not an exact ARN`);
  if (kmsKeyArn !== undefined && (kmsKeyArn.includes("*") || !kmsKeyArn.startsWith("arn:")))
    problems.push(`kmsKeyArn ${kmsKeyArn} is not an exact ARN`);
  if (problems.length > 0) throw new PlanError(problems);
  const statements: PolicyDocument["Statement"] = [
    {
      Sid: "ReadServedSecrets",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      Resource: unique,
    },
  ];
  if (kmsKeyArn)
    statements.push({
      Sid: "DecryptServedSecrets",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [kmsKeyArn],
    });
  return { Version: "2012-10-17", Statement: statements };
}

/** The execution role reads the SSRF token (injected at container start through `secrets`). */
export function executionRoleSecretsPolicy(tokenSecretArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "InjectAgentToken",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [tokenSecretArn],
      },
    ],
  };
}

// ---- ECR ----

/** The tag a build cache lives under: the one mutable tag of an otherwise immutable repository. */
export const CACHE_TAG = "buildcache";
export const RELEASE_TAG_PREFIX = "git-";

/**
 * Keeps the newest `keepReleases` release tags. There is deliberately no rule on untagged images:
 * the per-architecture images of a multi-arch release are untagged children of its index, and an
 * "expire untagged" rule would delete them from under a release that is kept.
 */
export function ecrLifecyclePolicy(keepReleases: number): { rules: unknown[] } {
  if (!Number.isInteger(keepReleases) || keepReleases < 1)
    throw new PlanError([`keepReleases ${keepReleases} must be >= 1`]);
  return {
    rules: [
      {
        rulePriority: 1,
        description: `Keep the newest ${keepReleases} releases (${RELEASE_TAG_PREFIX}* tags); never touch untagged per-architecture images or the build cache`,
        selection: {
          tagStatus: "tagged",
          tagPrefixList: [RELEASE_TAG_PREFIX],
          countType: "imageCountMoreThan",
          countNumber: keepReleases,
        },
        action: { type: "expire" },
      },
    ],
  };
}
