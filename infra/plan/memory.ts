// The sidecar container's memory in a Fargate task: a reservation, a hard limit, and V8 heap limits
// that fit under it. Pure. The containers of a task share its memory (1 GiB by default); without a
// limit of its own, a sidecar that grew would take what the server needs, and without heap limits
// V8 would size its heap from what Node infers rather than from the container's limit.
//
// Sized from the bench (bench/run.ts, whose "MB" are bytes / 2^20, so MiB here):
//   - idle RSS about 78 MiB (jemalloc), of which about 50 MiB are file-backed pages (the node binary) and
//     about 17 MiB the V8 heap;
//   - target under a 100,000-request burst at 50 concurrency: RSS <= 120 MiB;
//   - 2,000 idle SSE streams: about 145 MiB with 8 MiB semi-spaces, 137 MiB with the image's flags
//     now (about 22 KB of live heap per stream);
//   - V8's young generation is three semi-spaces (heap_size_limit = --max-old-space-size +
//     3 x --max-semi-space-size, read on Node 24), capped at 3 x 4 MiB by the image.
// How the numbers relate:
//   hard limit >= old space + young generation + outside the heap + margin
//     256        =   132     +        12        +       80         +   32
//   reservation (160) >= the largest measured working set (145), and below the hard limit (ECS
//   requires memory > memoryReservation);
//   task memory - hard limit >= what the server and the agent keep (256).
// So V8 collects harder and, at worst, fails with its own heap-out-of-memory report in the log,
// before the kernel's OOM killer stops the container at the hard limit.

/** The image's ENTRYPOINT passes --max-semi-space-size=4 (proxy/Dockerfile); NODE_OPTIONS repeats it. */
export const SIDECAR_SEMI_SPACE_MIB = 4;
/**
 * The Node flags of the image's ENTRYPOINT, for other commands run in its container (the health
 * check): V8's flags are part of the compile cache's key, so a command without them compiles every
 * module again. --heap-growing-percent cannot go in NODE_OPTIONS (Node refuses it there).
 */
export const SIDECAR_IMAGE_NODE_FLAGS = Object.freeze([
  `--max-semi-space-size=${SIDECAR_SEMI_SPACE_MIB}`,
  "--heap-growing-percent=100",
]);
export const SIDECAR_YOUNG_GENERATION_MIB = 3 * SIDECAR_SEMI_SPACE_MIB;
/**
 * RSS outside the V8 heap: the node binary's file-backed pages (about 50 MiB) and native memory
 * (a few MiB idle; sockets, HTTP parsers and buffers grow it under load: 30 MiB allowed for them).
 */
export const SIDECAR_NON_HEAP_MIB = 80;
/** The largest working set measured: 2,000 idle SSE streams (a burst's target is 120 MiB). */
export const SIDECAR_MEASURED_WORKING_SET_MIB = 145;
/**
 * The soft limit: under memory contention Docker keeps the container toward it (ECS's
 * memoryReservation), so it sits above the working set.
 */
export const SIDECAR_MEMORY_RESERVATION_MIB = 160;
/**
 * The least old space the sidecar runs with: the live heap with 2,000 idle SSE streams is about
 * 17 + 2,000 x 22 KB = 60 MiB, and V8 needs room above the live heap or it collects without end.
 */
export const SIDECAR_MIN_OLD_SPACE_MIB = 96;
/** Room left under the hard limit (page rounding, fragmentation): an eighth of it, at least 32 MiB. */
export const SIDECAR_MIN_MARGIN_MIB = 32;
export const sidecarMemoryMargin = (memoryMiB: number): number =>
  Math.max(SIDECAR_MIN_MARGIN_MIB, Math.ceil(memoryMiB / 8));
/** What the rest of the task keeps beside the sidecar's hard limit: the server and the agent. */
export const SERVER_MIN_MEMORY_MIB = 256;

// With a stdio server there is no server container: its children run in the sidecar's container
// (a stdio server is the sidecar's child, on its pipes), so that container's limit holds the
// sidecar's own budget (sidecarMemory, which V8's flags are sized from, as above) and the children.
/**
 * What the agent keeps beside the sidecar's container when the server runs inside it. An allowance,
 * not a measurement (the real agent does not run on the machines this was written on): a Rust
 * binary with an in-memory cache of a few secrets.
 */
export const AGENT_MEMORY_MIB = 64;
/**
 * What one stdio child is budgeted by default: about twice an idle Node server's own memory
 * (server-everything stdio, three running: 31 MiB anonymous each, 47 MiB PSS with the node
 * binary's pages shared between them), for what its calls allocate.
 */
export const STDIO_CHILD_MEMORY_MIB = 64;

/** The sidecar's container with a stdio server inside: its limit, and how many children fit. */
export interface StdioMemory {
  /** The container's hard limit: the task's memory less the agent's. */
  readonly containerMiB: number;
  /** What the children may use: the container's limit less the sidecar's own (sidecarMemory). */
  readonly childrenMiB: number;
  readonly childMiB: number;
  /** Children that fit: sessions and warm spares together. */
  readonly children: number;
}

export function stdioMemoryPlan(
  taskMemoryMiB: number,
  sidecarMemoryMiB: number,
  childMiB: number,
): StdioMemory {
  const containerMiB = taskMemoryMiB - AGENT_MEMORY_MIB;
  const childrenMiB = containerMiB - sidecarMemoryMiB;
  return { containerMiB, childrenMiB, childMiB, children: Math.max(0, Math.floor(childrenMiB / childMiB)) };
}

/**
 * Whether `sessions` sessions and `others` more children (the spares and the stateless pool) fit;
 * the problem names every setting that moves the numbers.
 */
export function stdioMemoryProblems(memory: StdioMemory, sessions: number, others: number): string[] {
  const needed = (sessions + others) * memory.childMiB;
  if (sessions >= 1 && needed <= memory.childrenMiB) return [];
  return [
    `memory: the stdio server's ${sessions} sessions and ${others} other children (server.spares and server.pool; one child each, server.childMemory ${memory.childMiB} MiB) need ${needed} MiB, and the sidecar's container has ${memory.childrenMiB} MiB for them (memory ${memory.containerMiB + AGENT_MEMORY_MIB} MiB less the agent's ${AGENT_MEMORY_MIB} and sidecarMemory ${memory.containerMiB - memory.childrenMiB}): raise memory, or lower sidecarMemory, server.childMemory, server.spares, server.pool or server.maxSessions`,
  ];
}

/** The sidecar container's memory, as the task definition carries it. */
export interface SidecarMemory {
  /** The container's `memory`: the hard limit (a container that tries to use more is killed). */
  readonly memoryMiB: number;
  /** The container's `memoryReservation`: the soft limit, which ECS requires below `memory`. */
  readonly reservationMiB: number;
  readonly maxOldSpaceMiB: number;
  readonly semiSpaceMiB: number;
}

/** The sidecar's memory from its hard limit: the old space takes what the rest leaves. */
export function sidecarMemoryPlan(memoryMiB: number): SidecarMemory {
  return {
    memoryMiB,
    reservationMiB: SIDECAR_MEMORY_RESERVATION_MIB,
    maxOldSpaceMiB:
      memoryMiB - SIDECAR_YOUNG_GENERATION_MIB - SIDECAR_NON_HEAP_MIB - sidecarMemoryMargin(memoryMiB),
    semiSpaceMiB: SIDECAR_SEMI_SPACE_MIB,
  };
}

/** The V8 flags, as NODE_OPTIONS (Node 24 accepts both there). */
export function sidecarNodeOptions(memory: SidecarMemory): string {
  return `--max-old-space-size=${memory.maxOldSpaceMiB} --max-semi-space-size=${memory.semiSpaceMiB}`;
}

/** The V8 flags back from NODE_OPTIONS (the policy pack reads a task definition); undefined if absent. */
export function v8HeapFlags(nodeOptions: string | undefined): {
  oldSpaceMiB?: number;
  semiSpaceMiB?: number;
} {
  const flag = (name: string) => {
    const match = new RegExp(`(?:^|\\s)--${name}=(\\d+)(?:\\s|$)`).exec(nodeOptions ?? "");
    return match ? Number(match[1]) : undefined;
  };
  const oldSpaceMiB = flag("max-old-space-size");
  const semiSpaceMiB = flag("max-semi-space-size");
  return {
    ...(oldSpaceMiB !== undefined ? { oldSpaceMiB } : {}),
    ...(semiSpaceMiB !== undefined ? { semiSpaceMiB } : {}),
  };
}

/**
 * Everything incoherent in the sidecar's memory and the task's, naming the settings (`names`: the
 * stack's keys by default; the policy pack names the task definition's fields).
 */
export function sidecarMemoryProblems(
  memory: SidecarMemory,
  taskMemoryMiB: number,
  names: { readonly limit: string; readonly task: string } = { limit: "sidecarMemory", task: "memory" },
  /** What the rest of the task needs: the server and the agent, or the agent alone (stdio inside). */
  beside: { readonly what: string; readonly mib: number } = {
    what: "the server and the agent",
    mib: SERVER_MIN_MEMORY_MIB,
  },
): string[] {
  const { memoryMiB, reservationMiB, maxOldSpaceMiB, semiSpaceMiB } = memory;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 1)
    return [`${names.limit} ${memoryMiB} must be a whole number of MiB`];
  const problems: string[] = [];
  const heapMiB = maxOldSpaceMiB + 3 * semiSpaceMiB;
  const marginMiB = memoryMiB - heapMiB - SIDECAR_NON_HEAP_MIB;
  if (maxOldSpaceMiB < SIDECAR_MIN_OLD_SPACE_MIB) {
    problems.push(
      `${names.limit} ${memoryMiB} MiB leaves V8 an old space of ${maxOldSpaceMiB} MiB, below the ${SIDECAR_MIN_OLD_SPACE_MIB} MiB the sidecar needs (the limit holds the old space, the ${3 * semiSpaceMiB} MiB young generation, ${SIDECAR_NON_HEAP_MIB} MiB outside the heap and a margin)`,
    );
  } else if (marginMiB < sidecarMemoryMargin(memoryMiB)) {
    problems.push(
      `${names.limit} ${memoryMiB} MiB: V8's heap limit (${maxOldSpaceMiB} MiB old space + ${3 * semiSpaceMiB} MiB young generation) and ${SIDECAR_NON_HEAP_MIB} MiB outside the heap leave ${marginMiB} MiB under it, below the ${sidecarMemoryMargin(memoryMiB)} MiB margin`,
    );
  }
  if (reservationMiB < SIDECAR_MEASURED_WORKING_SET_MIB)
    problems.push(
      `the sidecar's memory reservation ${reservationMiB} MiB is below its measured working set (${SIDECAR_MEASURED_WORKING_SET_MIB} MiB with 2,000 idle SSE streams)`,
    );
  if (reservationMiB >= memoryMiB)
    problems.push(
      `${names.limit} ${memoryMiB} MiB must be above the sidecar's memory reservation (${reservationMiB} MiB)`,
    );
  const leftMiB = taskMemoryMiB - memoryMiB;
  if (leftMiB < beside.mib)
    problems.push(
      `${names.task} ${taskMemoryMiB} MiB leaves ${beside.what} ${leftMiB} MiB beside the sidecar's ${memoryMiB} MiB (${names.limit}); ${beside.what === "the agent" ? "it needs" : "they need"} at least ${beside.mib} MiB: raise ${names.task} or lower ${names.limit}`,
    );
  return problems;
}
