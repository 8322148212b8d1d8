// The task's three containers as ECS receives them (containerDefinitions JSON), from settings the
// component has checked. Pure: no Pulumi, no I/O; parts/task.ts hands it the resolved image
// references, ARNs and log group names. Unit-tested in test/infra-plan.test.ts.

import { AGENT_PORT, CONTAINER_NAMES, CONTAINER_USER, type Timing } from "../plan.ts";
import { type SidecarMemory, sidecarNodeOptions } from "./memory.ts";
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
  readonly readiness: Readiness;
  /** Further sidecar options by flag name, checked already (plan/sidecar-env.ts). */
  readonly sidecarOptions: Readonly<Record<string, string>>;
  /** The sidecar container's limit, reservation and V8 heap flags, checked already (plan/memory.ts). */
  readonly sidecarMemory: SidecarMemory;
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
  const env = sidecarEnvironment({
    ports: { server: plan.server.port, sidecar: plan.sidecarPort, metrics: plan.metricsPort },
    agentPort: AGENT_PORT,
    timing: plan.timing,
    logLevel: plan.logLevel,
    readiness: plan.readiness,
    apiKeySecretArn: plan.apiKeySecretArn,
    injectHeaders: plan.injectHeaders,
    options: plan.sidecarOptions,
  });
  const sidecar: ContainerDefinition = {
    name: CONTAINER_NAMES.sidecar,
    image: plan.sidecarImage,
    essential: true,
    // Its own limit inside the task's memory, so a sidecar that grew cannot starve the server; the
    // server and the agent have none: the task's memory bounds them, and their sizes are not ours.
    memory: plan.sidecarMemory.memoryMiB,
    memoryReservation: plan.sidecarMemory.reservationMiB,
    user: CONTAINER_USER,
    readonlyRootFilesystem: true,
    portMappings: [
      { containerPort: plan.sidecarPort, protocol: "tcp" },
      { containerPort: plan.metricsPort, protocol: "tcp" },
    ],
    // NODE_OPTIONS sizes V8's heap under the container's limit (the image's ENTRYPOINT sets the
    // semi-space too; a flag on the command line wins, and the two agree).
    environment: Object.entries({ ...env, NODE_OPTIONS: sidecarNodeOptions(plan.sidecarMemory) }).map(
      ([name, value]) => ({ name, value }),
    ),
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
