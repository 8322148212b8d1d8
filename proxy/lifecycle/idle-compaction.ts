// Gives memory back after a burst, once the process has gone quiet.
//
// Why by hand: V8 keeps the heap pages a burst made it commit. Its memory reducer, which would
// release them, decides from the allocation rate that it samples at garbage collections; a quiet
// process collects nothing, so the reducer keeps reading the burst's rate ("high alloc" every 8 s in
// --trace-memory-reducer) and never runs. Measured with the memory benchmark (bench/run.ts): about
// 40 MB of pages around 13 MB of live objects, kept through any quiet. One "last resort" collection
// (the one V8 runs under memory pressure: it compacts, shrinks the young generation and releases
// pooled pages) once the quiet has lasted a while returns them.
//
// The decision is pure (IdleCompaction); startIdleCompaction is its shell: a timer reading the event
// loop's utilization, which says "busy" or "quiet" without counting requests.

import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface IdleCompactionPolicy {
  /** A tick at or above this event-loop utilization is activity that may have grown the heap. */
  readonly busyUtilization: number;
  /** A tick below this is quiet. */
  readonly quietUtilization: number;
  /** Quiet ticks in a row after activity before compacting. */
  readonly quietTicks: number;
}

export const IDLE_COMPACTION_POLICY: IdleCompactionPolicy = Object.freeze({
  // 5% of a 5 s tick is 250 ms of work: about a thousand proxied requests on this machine.
  busyUtilization: 0.05,
  // An ALB's health checks and a metrics scrape stay far below 1%.
  quietUtilization: 0.01,
  quietTicks: 2,
});

export const IDLE_COMPACTION_TICK_MS = 5000;

/** Once per quiet period that follows activity: never during load, never twice in one quiet. */
export class IdleCompaction {
  readonly #policy: IdleCompactionPolicy;
  #busySinceCompaction = false;
  #quietTicks = 0;
  /** The tick after a compaction holds the collection's own pause (measured: 60-300 ms). */
  #holdsCompaction = false;

  constructor(policy: IdleCompactionPolicy = IDLE_COMPACTION_POLICY) {
    this.#policy = policy;
  }

  /** One tick's event-loop utilization (0..1); true: compact now. */
  tick(utilization: number): boolean {
    // Not activity: counted as such, a large heap's collection would earn the next one, every
    // three ticks, in a process with no traffic at all.
    const ownPause = this.#holdsCompaction;
    this.#holdsCompaction = false;
    if (utilization >= this.#policy.busyUtilization && !ownPause) this.#busySinceCompaction = true;
    if (utilization >= this.#policy.quietUtilization) {
      this.#quietTicks = 0;
      return false;
    }
    this.#quietTicks += 1;
    if (!this.#busySinceCompaction || this.#quietTicks < this.#policy.quietTicks) return false;
    this.#busySinceCompaction = false;
    this.#holdsCompaction = true;
    return true;
  }
}

export interface IdleCompactionShell {
  /** Utilization since the previous call (0..1). Default: the event loop's. */
  readonly utilization?: () => number;
  /** Runs the collection. Default: V8's last-resort major collection, off the current task. */
  readonly compact?: () => void;
  readonly tickMs?: number;
  readonly policy?: IdleCompactionPolicy;
}

/** Starts the timer (unref'd: it never keeps the process alive); returns its stop. */
export function startIdleCompaction(shell: IdleCompactionShell = {}): () => void {
  const decide = new IdleCompaction(shell.policy);
  const utilization = shell.utilization ?? eventLoopUtilization();
  const compact = shell.compact ?? lastResortCollection();
  const timer = setInterval(() => {
    if (decide.tick(utilization())) compact();
  }, shell.tickMs ?? IDLE_COMPACTION_TICK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function eventLoopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

/**
 * V8's gc(), without exposing it to the process's own global scope: --expose-gc set at run time
 * installs it in contexts created afterwards, so a fresh context hands it over. (The flag on the
 * command line would do it for every launcher that remembers to pass it, and miss the cache.)
 */
export function lastResortCollection(): () => void {
  // Made on first use: the context it comes from is memory an idle sidecar that never had a burst
  // does not need to hold.
  let gc: NodeJS.GCFunction | undefined = globalThis.gc; // started with --expose-gc: nothing to set
  return () => {
    if (gc === undefined) {
      setFlagsFromString("--expose-gc");
      try {
        gc = runInNewContext("gc") as NodeJS.GCFunction;
      } finally {
        // Back as it was (it was off: no gc above): V8's flags are part of the compile cache's key
        // (measured: with --expose-gc set, none of the image's cached modules is accepted), so a
        // module loaded later still hits it.
        setFlagsFromString("--no-expose-gc");
      }
    }
    void gc({ type: "major", execution: "async", flavor: "last-resort" });
  };
}
