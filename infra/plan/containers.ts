// The task's containers as ECS receives them (containerDefinitions JSON), from settings the
// component has checked: the agent, the server and the sidecar; or, for a stdio server, the agent
// and the sidecar with the server's children inside it. Pure: no Pulumi, no I/O; parts/task.ts hands it the resolved image
// references, ARNs and log group names. Unit-tested in test/infra-plan.test.ts.

import { AGENT_PORT, CONTAINER_NAMES, CONTAINER_USER, type Timing } from "../plan.ts";
import {
  SIDECAR_IMAGE_NODE_FLAGS,
  type SidecarMemory,
  type StdioMemory,
  sidecarNodeOptions,
} from "./memory.ts";
import { LABELS } from "./routing.ts";
import { type Readiness, sidecarEnvironment } from "./sidecar-env.ts";

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
  /**
   * The server keeps no sessions (it serves 2026-07-28 stateless requests only, or runs in a
   * stateless mode): the service's tasks then need no session routing.
   */
  readonly stateless?: boolean | undefined;
}

/** A variable of the stdio server's children, from Secrets Manager (rotated into new children). */
export interface SecretVariable {
  readonly name: string;
  readonly secretArn: string;
  readonly jsonKey?: string | undefined;
}

/**
 * A stdio MCP server: no container of its own. The sidecar runs it as its children, one per
 * session, on their pipes, so the server must be in the sidecar's image (build one FROM the
 * sidecar image: examples/stdio-server/Dockerfile).
 */
export interface StdioServer {
  /** The command line as argv (no shell), e.g. ["/nodejs/bin/node", "/opt/server/index.js", "stdio"]. */
  readonly stdio: readonly string[];
  /** The children's working directory (default: the sidecar's, /app). */
  readonly cwd?: string | undefined;
  /** Variables for the children (besides PATH, HOME, LANG, TZ): plain values, no secrets. */
  readonly environment?: Readonly<Record<string, string>> | undefined;
  readonly secretEnvironment?: readonly SecretVariable[] | undefined;
  /** Sessions per task, a child each (default: as many as the task's memory holds, plan/memory.ts). */
  readonly maxSessions?: number | undefined;
  /** MiB budgeted per child (default: STDIO_CHILD_MEMORY_MIB). */
  readonly childMemory?: number | undefined;
  /** Children kept started ahead of need (the sidecar's --stdio-spares; default 1). */
  readonly spares?: number | undefined;
  /** Children serving 2026-07-28 stateless requests (the sidecar's --stdio-pool; default 2). */
  readonly pool?: number | undefined;
  /**
   * The service's clients speak 2026-07-28 only, so every request is served by the pool of the task
   * it reaches and no session lives in one task's children: the service may then run more than one
   * task (stdio sessions are not routed across tasks).
   */
  readonly stateless?: boolean | undefined;
}

/** A stdio server as the task runs it: its numbers resolved against the memory. */
export interface StdioPlan {
  readonly kind: "stdio";
  readonly server: StdioServer;
  readonly maxSessions: number;
  readonly spares: number;
  readonly pool: number;
  readonly memory: StdioMemory;
}

export const isStdioPlan = (server: object): server is StdioPlan =>
  "kind" in server && server.kind === "stdio";

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
  /** An HTTP server in its own container, or a stdio server run inside the sidecar's. */
  readonly server: ServerContainer | StdioPlan;
  readonly sidecarPort: number;
  readonly metricsPort: number;
  /** The SSRF token secret: handed to the agent and the sidecar through `secrets`, never as plain env. */
  readonly tokenSecretArn: string;
  /** Undefined when auth is explicitly disabled. */
  readonly apiKeySecretArn: string | undefined;
  readonly injectHeaders: readonly InjectedHeader[];
  readonly logGroups: { readonly agent: string; readonly server: string; readonly sidecar: string };
  readonly logLevel: string;
  readonly readiness: Readiness;
  /** Further sidecar options by flag name, checked already (plan/sidecar-env.ts). */
  readonly sidecarOptions: Readonly<Record<string, string>>;
  /** The sidecar container's limit, reservation and V8 heap flags, checked already (plan/memory.ts). */
  readonly sidecarMemory: SidecarMemory;
  /** Session routing across the service's tasks, when on (plan/routing.ts). */
  readonly routing?: { readonly sessionSecretArn: string; readonly peerCidr: string } | undefined;
  /** The service's maxCount, and whether its server keeps sessions: labels for the policy pack. */
  readonly maxTasks: number;
}

export interface ContainerDefinition {
  name: string;
  image: string;
  essential: boolean;
  /** Hard limit, MiB: a container that tries to use more is killed. */
  memory?: number;
  /** Soft limit, MiB: under memory contention Docker keeps the container toward it. */
  memoryReservation?: number;
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
  /** An init process as PID 1 (ECS's initProcessEnabled): it reaps what the children orphan. */
  linuxParameters?: { initProcessEnabled: boolean };
  dockerLabels?: Record<string, string>;
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

/** The containers of the task, as ECS receives them (containerDefinitions JSON). */
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
  const stdio = isStdioPlan(plan.server) ? plan.server : undefined;
  const httpServer = isStdioPlan(plan.server) ? undefined : plan.server;
  const server: ContainerDefinition | undefined = httpServer && {
    name: CONTAINER_NAMES.server,
    image: httpServer.image,
    essential: true,
    ...(httpServer.user ? { user: httpServer.user } : {}),
    readonlyRootFilesystem: httpServer.readonlyRootFilesystem ?? true,
    // No port mapping: only the sidecar, on the task's loopback, talks to the server.
    environment: Object.entries(httpServer.environment ?? {}).map(([name, value]) => ({ name, value })),
    ...(httpServer.healthCheckCommand ? { healthCheck: healthCheck(httpServer.healthCheckCommand) } : {}),
    stopTimeout: plan.timing.stopTimeoutSeconds,
    logConfiguration: logs(plan.logGroups.server, plan.region, CONTAINER_NAMES.server),
  };
  const env = sidecarEnvironment({
    ports: {
      ...(httpServer ? { server: httpServer.port } : {}),
      sidecar: plan.sidecarPort,
      metrics: plan.metricsPort,
    },
    agentPort: AGENT_PORT,
    timing: plan.timing,
    logLevel: plan.logLevel,
    readiness: plan.readiness,
    apiKeySecretArn: plan.apiKeySecretArn,
    injectHeaders: plan.injectHeaders,
    options: plan.sidecarOptions,
    routing: plan.routing,
    ...(stdio ? { stdio } : {}),
  });
  // The children's plain variables sit in the container's environment, and the sidecar passes
  // exactly those names on (--stdio-env NAME): a value may hold a comma, which a list could not.
  const childVariables = stdio?.server.environment ?? {};
  const sidecar: ContainerDefinition = {
    name: CONTAINER_NAMES.sidecar,
    image: plan.sidecarImage,
    essential: true,
    // Its own limit inside the task's memory, so a sidecar that grew cannot starve the server; the
    // server and the agent have none: the task's memory bounds them, and their sizes are not ours.
    // With a stdio server inside, the limit holds the children too (plan/memory.ts).
    memory: stdio ? stdio.memory.containerMiB : plan.sidecarMemory.memoryMiB,
    memoryReservation: plan.sidecarMemory.reservationMiB,
    user: CONTAINER_USER,
    readonlyRootFilesystem: true,
    portMappings: [
      { containerPort: plan.sidecarPort, protocol: "tcp" },
      { containerPort: plan.metricsPort, protocol: "tcp" },
    ],
    // NODE_OPTIONS sizes V8's heap under the container's limit (the image's ENTRYPOINT sets the
    // semi-space too; a flag on the command line wins, and the two agree). The children never get
    // it: they get only PATH, HOME, LANG, TZ and what the sidecar is told to pass.
    environment: Object.entries({
      ...childVariables,
      ...env,
      NODE_OPTIONS: sidecarNodeOptions(plan.sidecarMemory),
    }).map(([name, value]) => ({ name, value })),
    secrets: [token],
    healthCheck: healthCheck([
      "/nodejs/bin/node",
      ...SIDECAR_IMAGE_NODE_FLAGS,
      "/app/proxy/cli.ts",
      "healthcheck",
    ]),
    // Node as PID 1 reaps only its own children: what a stdio server's children orphan would stay
    // zombies for the task's life. An init process (docker-init, tini) reaps them, and passes
    // SIGTERM on to the sidecar.
    ...(stdio ? { linuxParameters: { initProcessEnabled: true } } : {}),
    dockerLabels: {
      [LABELS.maxTasks]: String(plan.maxTasks),
      [LABELS.serverSessions]: (httpServer ?? stdio?.server)?.stateless ? "none" : "kept",
    },
    // Shutdown order is the reverse of dependsOn: ECS stops the sidecar first, while the server and
    // the agent still answer, and stops them once the sidecar has drained.
    dependsOn: [
      ...(httpServer
        ? [
            {
              containerName: CONTAINER_NAMES.server,
              condition: httpServer.healthCheckCommand ? ("HEALTHY" as const) : ("START" as const),
            },
          ]
        : []),
      { containerName: CONTAINER_NAMES.agent, condition: agentHealthCheck ? "HEALTHY" : "START" },
    ],
    stopTimeout: plan.timing.stopTimeoutSeconds,
    logConfiguration: logs(plan.logGroups.sidecar, plan.region, CONTAINER_NAMES.sidecar),
  };
  return server ? [agent, server, sidecar] : [agent, sidecar];
}
