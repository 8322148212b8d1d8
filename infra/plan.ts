// The task-definition plan: everything ECS, the ALB and IAM will be told, computed from settings
// without creating a resource. Pure: no Pulumi, no I/O; problems are collected and thrown once
// (as awsx's subnet distributor does), so a bad stack config fails `pulumi preview` with every
// reason at once. Unit-tested in test/infra-plan.test.ts; the component (mcp-service.ts) only
// turns this plan into resources.
//
// This module holds the service's numbers and their checks; plan/ holds the rest, one concern per
// file: the container definitions (plan/containers.ts), the sidecar's environment and options
// (plan/sidecar-env.ts), the sidecar's memory (plan/memory.ts, re-exported here), secrets in plain
// environment (plan/plain-env.ts) and the IAM documents (plan/iam.ts).

import { OPTIONS, type ReadyProbeKind } from "../proxy/config.ts";
import type { StdioPlan, StdioServer } from "./plan/containers.ts";
import { AGENT_MEMORY_MIB, sidecarMemoryPlan, sidecarMemoryProblems } from "./plan/memory.ts";
import { describePlainSecret, plainEnvironmentSecret } from "./plan/plain-env.ts";
import { type RoutingInput, routingProblems, sessionRoutingOf } from "./plan/routing.ts";
import { sidecarSettingsProblems } from "./plan/sidecar-env.ts";
import { stdioPlan } from "./plan/stdio.ts";

export type { InjectedHeader, SecretVariable, ServerContainer, StdioServer } from "./plan/containers.ts";
export * from "./plan/memory.ts";

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

/** The sidecar's own default of an option, from its option table (proxy/config/*.ts). */
const sidecarDefault = (flag: string): string => {
  const value = OPTIONS.find((spec) => spec.flag === flag)?.default;
  if (value === undefined) throw new Error(`the sidecar has no default for --${flag}`);
  return value;
};

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
  /** The sidecar's own default (--log-level). */
  logLevel: sidecarDefault("log-level"),
  assignPublicIp: false,
  /** Where the server serves MCP: the sidecar's own assumption (--ready-probe-path's default). */
  mcpPath: sidecarDefault("ready-probe-path"),
  /** A JSON-RPC ping at the MCP path: the sidecar's own default (--ready-probe). */
  readyProbe: sidecarDefault("ready-probe") as ReadyProbeKind,
  /** The sidecar container's hard memory limit (MiB): V8's heap is sized under it (plan/memory.ts). */
  sidecarMemory: 256,
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
  /** The HTTP server's port; undefined with a stdio server. */
  readonly serverPort: number | undefined;
  /** A stdio server run inside the sidecar's container, instead of an HTTP server's container. */
  readonly stdio: StdioServer | undefined;
  readonly drainSeconds: number;
  readonly albIdleTimeoutSeconds: number;
  readonly serverEnvironment: Readonly<Record<string, string>>;
  readonly mcpPath: string;
  /** A string: a JavaScript caller or stack config may give anything; the sidecar's parser checks. */
  readonly readyProbe: string;
  /** Undefined: the MCP path (none with the tcp probe). */
  readonly readyProbePath: string | undefined;
  readonly logLevel: string;
  /** Further options of the sidecar by flag name (no dashes). */
  readonly sidecarOptions: Readonly<Record<string, string>>;
  /** The sidecar container's hard memory limit, MiB. */
  readonly sidecarMemory: number;
  /** Session routing across the tasks; undefined: on when maxCount > 1 (plan/routing.ts). */
  readonly sessionRouting: boolean | undefined;
  /** The server keeps no sessions, or a stdio server's clients open none (server.stateless). */
  readonly statelessServer: boolean;
}

/** What a service is given, any of its numbers left out. */
export type ServiceShapeInput = Partial<
  Omit<ServiceShape, "allowedCidrs" | "auth" | "serverPort" | "stdio" | "sessionRouting">
> &
  Pick<ServiceShape, "allowedCidrs" | "auth" | "serverPort"> & {
    readonly stdio?: StdioServer | undefined;
    readonly sessionRouting?: boolean | undefined;
  };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The shape with SERVICE_DEFAULTS applied to what was left out (desiredCount: minCount). */
export function serviceShape(input: ServiceShapeInput): ServiceShape {
  const minCount = input.minCount ?? SERVICE_DEFAULTS.minCount;
  return {
    cpu: input.cpu ?? SERVICE_DEFAULTS.cpu,
    memory: input.memory ?? SERVICE_DEFAULTS.memory,
    minCount,
    // A stdio server's sessions live in one task's children and are not routed across tasks.
    maxCount:
      input.maxCount ??
      (input.stdio !== undefined && !input.statelessServer ? minCount : SERVICE_DEFAULTS.maxCount),
    desiredCount: input.desiredCount ?? minCount,
    allowedCidrs: input.allowedCidrs,
    auth: input.auth,
    serverPort: input.serverPort,
    stdio: input.stdio,
    drainSeconds: input.drainSeconds ?? SERVICE_DEFAULTS.drainSeconds,
    albIdleTimeoutSeconds: input.albIdleTimeoutSeconds ?? SERVICE_DEFAULTS.albIdleTimeoutSeconds,
    serverEnvironment: input.serverEnvironment ?? {},
    mcpPath: input.mcpPath ?? SERVICE_DEFAULTS.mcpPath,
    readyProbe: input.readyProbe ?? SERVICE_DEFAULTS.readyProbe,
    readyProbePath: input.readyProbePath,
    logLevel: input.logLevel ?? SERVICE_DEFAULTS.logLevel,
    sidecarOptions: input.sidecarOptions ?? {},
    sidecarMemory: input.sidecarMemory ?? SERVICE_DEFAULTS.sidecarMemory,
    sessionRouting: input.sessionRouting,
    statelessServer: input.statelessServer ?? false,
  };
}

/** Everything wrong with a service's shape, each problem naming its setting; empty when it fits. */
export function serviceProblems(shape: ServiceShape): string[] {
  const problems = fargateSizeProblems(shape.cpu, shape.memory);
  const stdio = shape.stdio && stdioPlan(shape.stdio, shape.memory, shape.sidecarMemory);
  problems.push(
    ...sidecarMemoryProblems(
      sidecarMemoryPlan(shape.sidecarMemory),
      shape.memory,
      undefined,
      // With a stdio server inside the sidecar's container, only the agent is beside it.
      stdio ? { what: "the agent", mib: AGENT_MEMORY_MIB } : undefined,
    ),
  );
  if (stdio) problems.push(...stdio.problems);
  const { minCount, maxCount, desiredCount } = shape;
  if (minCount < 1) problems.push(`minCount ${minCount} must be >= 1`);
  if (maxCount < minCount) problems.push(`maxCount ${maxCount} is below minCount ${minCount}`);
  if (desiredCount < minCount || desiredCount > maxCount)
    problems.push(`desiredCount ${desiredCount} is outside minCount..maxCount (${minCount}..${maxCount})`);
  problems.push(...routingProblems(routingInputOf(shape)));
  if (shape.allowedCidrs.length === 0) problems.push("allowedCidrs is empty: nobody could reach the service");
  for (const cidr of shape.allowedCidrs)
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr))
      problems.push(`allowedCidrs: "${cidr}" is not an IPv4 CIDR`);
  // A missing ARN is the caller's to report: it knows the setting's name.
  const { secretArn } = shape.auth;
  if (shape.auth.mode === "existing" && secretArn && !secretArn.startsWith("arn:aws"))
    problems.push(`auth.secretArn "${shape.auth.secretArn}" is not an ARN`);
  if (shape.serverPort === undefined && stdio === undefined)
    problems.push("server: give an HTTP server (image and port) or a stdio server (stdio)");
  if (shape.serverPort === SIDECAR_PORT || shape.serverPort === METRICS_PORT)
    problems.push(
      `server.port ${shape.serverPort} collides with the sidecar's ports (${SIDECAR_PORT}, ${METRICS_PORT})`,
    );
  // The load balancer is internet-facing whatever the tasks' subnets: only the CIDRs keep it private.
  if (shape.allowedCidrs.includes("0.0.0.0/0") && shape.auth.mode === "disabled")
    problems.push("auth is disabled while the load balancer is open to 0.0.0.0/0: refusing an open endpoint");
  for (const [name, value] of Object.entries(shape.serverEnvironment)) {
    if (!ENV_NAME.test(name)) problems.push(`serverEnvironment: "${name}" is not a variable name`);
    // The policy pack's rule, applied at preview: the value would sit in the task definition.
    const secret = plainEnvironmentSecret(name, value);
    if (secret)
      problems.push(
        `serverEnvironment: ${describePlainSecret(secret, name)}; give the server secrets through injectHeaders or the Secrets Manager Agent`,
      );
  }
  let timing: Timing | undefined;
  try {
    timing = planTiming(shape.drainSeconds, undefined, shape.albIdleTimeoutSeconds);
  } catch (error) {
    if (!(error instanceof PlanError)) throw error;
    problems.push(...error.problems);
  }
  problems.push(
    ...sidecarSettingsProblems(shape, {
      ports: {
        ...(shape.serverPort !== undefined ? { server: shape.serverPort } : {}),
        sidecar: SIDECAR_PORT,
        metrics: METRICS_PORT,
      },
      agentPort: AGENT_PORT,
      ...(stdio ? { stdio: stdio.plan } : {}),
      // A stdio server's own problems are named above; the whole-environment check would repeat them.
      timing: stdio !== undefined && stdio.problems.length > 0 ? undefined : timing,
    }),
  );
  return problems;
}

export function routingInputOf(shape: ServiceShape): RoutingInput {
  return {
    sessionRouting: shape.sessionRouting,
    maxCount: shape.maxCount,
    statelessServer: shape.statelessServer,
    stdio: shape.stdio !== undefined,
  };
}

/** Whether the service's sidecars route sessions across its tasks. */
export function sessionRoutingOfShape(shape: ServiceShape): boolean {
  return sessionRoutingOf(routingInputOf(shape));
}

/** The stdio server's plan for a shape serviceProblems accepted; undefined for an HTTP server. */
export function stdioPlanOf(shape: ServiceShape): StdioPlan | undefined {
  return shape.stdio && stdioPlan(shape.stdio, shape.memory, shape.sidecarMemory).plan;
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
