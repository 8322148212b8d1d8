// The rules this project stands for, as CrossGuard resource policies. Each is a plain object with
// its validateResource function, so the unit tests call it directly on passing and failing inputs
// (constructing a PolicyPack starts a gRPC server; only infra/policy/index.ts does that).

import type { ResourceValidationPolicy } from "@pulumi/policy";
import { AGENT_MEMORY_MIB, sidecarMemoryProblems, v8HeapFlags } from "../plan/memory.ts";
import { describePlainSecret, plainEnvironmentSecret } from "../plan/plain-env.ts";
import { LABELS } from "../plan/routing.ts";
import { CACHE_TAG, FARGATE_MAX_STOP_TIMEOUT_SECONDS, STOP_MARGIN_SECONDS } from "../plan.ts";

type Props = Record<string, unknown>;

interface Container {
  name?: string;
  user?: string;
  memory?: number;
  memoryReservation?: number;
  stopTimeout?: number;
  environment?: { name: string; value: string }[];
  dockerLabels?: Record<string, string>;
}

function containersOf(props: Props): Container[] {
  const raw = props.containerDefinitions;
  if (typeof raw !== "string") return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    return Array.isArray(parsed) ? (parsed as Container[]) : [];
  } catch {
    return [];
  }
}

const TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition";

export const arm64Tasks: ResourceValidationPolicy = {
  name: "mcp-sidecar-arm64-tasks",
  description:
    "Fargate tasks run on ARM64 (Graviton): the same work for less. X86_64 needs an explicit reason.",
  enforcementLevel: "advisory",
  validateResource: (args, reportViolation) => {
    if (args.type !== TASK_DEFINITION) return;
    const platform = args.props.runtimePlatform as { cpuArchitecture?: string } | undefined;
    if (platform?.cpuArchitecture !== "ARM64")
      reportViolation(
        `runtimePlatform.cpuArchitecture is ${platform?.cpuArchitecture ?? "unset"}, not ARM64`,
      );
  },
};

export const ecrImmutableScanned: ResourceValidationPolicy = {
  name: "mcp-sidecar-ecr-immutable-scanned",
  description:
    "ECR repositories have immutable tags (a build-cache exclusion at most) and scan images on push.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== "aws:ecr/repository:Repository") return;
    const mutability = args.props.imageTagMutability;
    if (mutability !== "IMMUTABLE" && mutability !== "IMMUTABLE_WITH_EXCLUSION")
      reportViolation(`imageTagMutability is ${String(mutability ?? "MUTABLE")}`);
    // Only the build cache may be overwritten: an exclusion such as `*` would make every tag mutable.
    const exclusions = (args.props.imageTagMutabilityExclusionFilters ?? []) as { filter?: string }[];
    for (const exclusion of exclusions)
      if (exclusion.filter !== `${CACHE_TAG}*` && exclusion.filter !== CACHE_TAG)
        reportViolation(
          `imageTagMutabilityExclusionFilters: "${exclusion.filter}" is not the build cache tag`,
        );
    const scanning = args.props.imageScanningConfiguration as { scanOnPush?: boolean } | undefined;
    if (scanning?.scanOnPush !== true) reportViolation("imageScanningConfiguration.scanOnPush is not true");
  },
};

export const nonRootContainers: ResourceValidationPolicy = {
  name: "mcp-sidecar-non-root",
  description: "Every container of a task definition names a non-root user.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== TASK_DEFINITION) return;
    for (const container of containersOf(args.props)) {
      const user = container.user?.split(":")[0];
      if (user === undefined || user === "" || user === "0" || user === "root") {
        reportViolation(
          `container ${container.name ?? "?"} runs as ${user ? user : "the image's default user"}, not a non-root user`,
        );
      }
    }
  },
};

export const noSecretEnvironment: ResourceValidationPolicy = {
  name: "mcp-sidecar-no-secret-env",
  description:
    "No plain environment variable looks like a secret: secrets go through `secrets` (an ARN) or the Secrets Manager Agent. A variable whose value is an ARN or a URL without credentials is a reference, not a secret; so are the sidecar's own variables other than MCP_SIDECAR_SECRETS_TOKEN (its option table says what each holds).",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== TASK_DEFINITION) return;
    for (const container of containersOf(args.props)) {
      for (const variable of container.environment ?? []) {
        const secret = plainEnvironmentSecret(variable.name, variable.value);
        if (secret)
          reportViolation(
            `container ${container.name ?? "?"}: ${describePlainSecret(secret, variable.name)} (use secrets with an ARN)`,
          );
      }
    }
  },
};

function seconds(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^(\d+)(ms|s|m)?$/.exec(value);
  if (!match) return undefined;
  const n = Number(match[1]);
  return match[2] === "ms" ? n / 1000 : match[2] === "m" ? n * 60 : n;
}

export const coherentDrain: ResourceValidationPolicy = {
  name: "mcp-sidecar-coherent-drain",
  description: `The sidecar's --drain-timeout fits inside its stopTimeout with a ${STOP_MARGIN_SECONDS} s margin, and the stopTimeout inside Fargate's ${FARGATE_MAX_STOP_TIMEOUT_SECONDS} s.`,
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== TASK_DEFINITION) return;
    for (const container of containersOf(args.props)) {
      const drain = seconds(
        container.environment?.find((e) => e.name === "MCP_SIDECAR_DRAIN_TIMEOUT")?.value,
      );
      if (container.stopTimeout !== undefined && container.stopTimeout > FARGATE_MAX_STOP_TIMEOUT_SECONDS) {
        reportViolation(
          `container ${container.name ?? "?"}: stopTimeout ${container.stopTimeout} s is above Fargate's ${FARGATE_MAX_STOP_TIMEOUT_SECONDS} s`,
        );
      }
      if (drain === undefined) continue;
      const stop = container.stopTimeout ?? 30;
      if (drain + STOP_MARGIN_SECONDS > stop) {
        reportViolation(
          `container ${container.name ?? "?"}: drain timeout ${drain} s + ${STOP_MARGIN_SECONDS} s does not fit in stopTimeout ${stop} s (SIGKILL would cut the drain)`,
        );
      }
    }
  },
};

/**
 * Only the sidecar's container: its limits are this project's to know (plan/memory.ts). A hard
 * limit on a server of yours would be a number we cannot know; the task's memory bounds it.
 */
export const boundedSidecarMemory: ResourceValidationPolicy = {
  name: "mcp-sidecar-bounded-sidecar-memory",
  description:
    "The sidecar's container has a hard memory limit and a reservation, V8 heap limits (NODE_OPTIONS) that fit under the limit, and leaves the rest of the task's memory to the server and the agent (to the agent alone when a stdio server runs inside it).",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== TASK_DEFINITION) return;
    const taskMemory = Number(args.props.memory);
    for (const container of containersOf(args.props)) {
      const env = new Map((container.environment ?? []).map((e) => [e.name, e.value]));
      // The sidecar's one required option (an upstream or a stdio server): this container runs it.
      const stdio = env.has("MCP_SIDECAR_STDIO");
      if (!env.has("MCP_SIDECAR_UPSTREAM") && !stdio) continue;
      const name = container.name ?? "?";
      const { memory, memoryReservation } = container;
      if (memory === undefined || memoryReservation === undefined) {
        reportViolation(
          `container ${name} has no hard memory limit and reservation (memory, memoryReservation): it could take the server's memory`,
        );
        continue;
      }
      const { oldSpaceMiB, semiSpaceMiB } = v8HeapFlags(env.get("NODE_OPTIONS"));
      if (oldSpaceMiB === undefined || semiSpaceMiB === undefined) {
        reportViolation(
          `container ${name}: NODE_OPTIONS sets no --max-old-space-size and --max-semi-space-size, so V8 does not size its heap under the memory limit`,
        );
        continue;
      }
      const problems = sidecarMemoryProblems(
        { memoryMiB: memory, reservationMiB: memoryReservation, maxOldSpaceMiB: oldSpaceMiB, semiSpaceMiB },
        Number.isFinite(taskMemory) ? taskMemory : Number.POSITIVE_INFINITY,
        { limit: "memory", task: "the task's memory" },
        // A stdio server's children live inside this container: beside it, only the agent.
        stdio ? { what: "the agent", mib: AGENT_MEMORY_MIB } : undefined,
      );
      for (const problem of problems) reportViolation(`container ${name}: ${problem}`);
    }
  },
};

interface Statement {
  Effect?: string;
  Action?: string | string[];
  Resource?: string | string[];
}

export const noSecretsWildcard: ResourceValidationPolicy = {
  name: "mcp-sidecar-no-iam-wildcard-on-secrets",
  description: "IAM policies grant Secrets Manager and KMS actions on exact ARNs, never with a wildcard.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== "aws:iam/rolePolicy:RolePolicy" && args.type !== "aws:iam/policy:Policy") return;
    const raw = args.props.policy;
    let document: { Statement?: Statement | Statement[] };
    try {
      document = typeof raw === "string" ? JSON.parse(raw) : (raw as typeof document);
    } catch {
      reportViolation("policy is not JSON");
      return;
    }
    const statements = Array.isArray(document?.Statement)
      ? document.Statement
      : document?.Statement
        ? [document.Statement]
        : [];
    for (const statement of statements) {
      const actions = ([] as string[]).concat(statement.Action ?? []);
      const resources = ([] as string[]).concat(statement.Resource ?? []);
      const sensitive = actions.filter((a) => /^(secretsmanager|kms):/i.test(a) || a === "*");
      if (sensitive.length === 0) continue;
      if (sensitive.some((a) => a.includes("*")))
        reportViolation(`action wildcard ${sensitive.filter((a) => a.includes("*")).join(", ")} on secrets`);
      const wild = resources.filter((r) => r.includes("*"));
      if (wild.length > 0)
        reportViolation(`${sensitive.join(", ")} granted on ${wild.join(", ")}: name the exact ARNs`);
    }
  },
};

/**
 * A 2025-era server keeps sessions in memory: behind an ALB that balances each request, every task
 * but one answers a session's requests with 404 unless the sidecars route them (docs/scaling.md).
 * The task definition alone does not say how many tasks may run, so McpService labels the sidecar
 * container with its maxCount and whether the server keeps sessions.
 */
export const sessionRoutingAcrossTasks: ResourceValidationPolicy = {
  name: "mcp-sidecar-session-routing",
  description:
    "A task definition whose sidecar fronts an HTTP server that keeps sessions, in a service that may run more than one task, turns session routing on (MCP_SIDECAR_SESSION_ROUTING); a stdio server that keeps sessions runs in one task.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== TASK_DEFINITION) return;
    for (const container of containersOf(args.props)) {
      const env = new Map((container.environment ?? []).map((e) => [e.name, e.value]));
      const stdio = env.has("MCP_SIDECAR_STDIO");
      if (!env.has("MCP_SIDECAR_UPSTREAM") && !stdio) continue;
      const labels = container.dockerLabels ?? {};
      const maxTasks = Number(labels[LABELS.maxTasks] ?? "1");
      if (!(maxTasks > 1) || labels[LABELS.serverSessions] === "none") continue;
      if (stdio) {
        reportViolation(
          `container ${container.name ?? "?"}: up to ${maxTasks} tasks run a stdio server whose sessions live in one task's children, and stdio sessions are not routed across tasks: a session's requests on another task would get 404`,
        );
        continue;
      }
      const routing = (env.get("MCP_SIDECAR_SESSION_ROUTING") ?? "off").toLowerCase();
      if (!["on", "true", "1", "yes"].includes(routing))
        reportViolation(
          `container ${container.name ?? "?"}: up to ${maxTasks} tasks run a server that keeps sessions, and session routing is off (MCP_SIDECAR_SESSION_ROUTING): a session's requests on another task would get 404`,
        );
    }
  },
};

export const ALL_POLICIES: readonly ResourceValidationPolicy[] = [
  sessionRoutingAcrossTasks,
  arm64Tasks,
  ecrImmutableScanned,
  nonRootContainers,
  noSecretEnvironment,
  coherentDrain,
  boundedSidecarMemory,
  noSecretsWildcard,
];
