// Giving memory back once the process goes quiet (proxy/lifecycle/idle-compaction.ts): the decision,
// its timer under fake timers, and the real collection in a process of its own.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SIDECAR_NODE_FLAGS } from "../bench/lib.ts";
import {
  IDLE_COMPACTION_POLICY,
  IDLE_COMPACTION_TICK_MS,
  IdleCompaction,
  startIdleCompaction,
} from "../proxy/lifecycle/idle-compaction.ts";

const moduleUrl = JSON.stringify(new URL("../proxy/lifecycle/idle-compaction.ts", import.meta.url).href);
const BUSY = 0.9;
const QUIET = 0.001;
const SOME = 0.02; // above quiet, below busy: a trickle of requests

describe("IdleCompaction", () => {
  /** The ticks (by index) at which the decision compacts, for these utilizations. */
  const compactsAt = (ticks: number[]) => {
    const decide = new IdleCompaction();
    return ticks.flatMap((u, i) => (decide.tick(u) ? [i] : []));
  };

  it("compacts once the quiet after activity has lasted its ticks, and only once", () => {
    expect(IDLE_COMPACTION_POLICY.quietTicks).toBe(2);
    expect(compactsAt([BUSY, BUSY, QUIET, QUIET, QUIET, QUIET])).toEqual([3]);
  });

  it("never compacts a process that was never busy, nor under load", () => {
    expect(compactsAt([QUIET, QUIET, QUIET, QUIET])).toEqual([]);
    expect(compactsAt([BUSY, BUSY, BUSY, BUSY])).toEqual([]);
  });

  it("a trickle is not quiet and not activity: it postpones the compaction without earning one", () => {
    expect(compactsAt([BUSY, QUIET, SOME, QUIET, QUIET])).toEqual([4]);
    expect(compactsAt([SOME, SOME, QUIET, QUIET, QUIET])).toEqual([]);
  });

  it("the collection's own pause, in the tick after it, is not activity: no compaction earns the next", () => {
    expect(compactsAt([BUSY, QUIET, QUIET, BUSY, QUIET, QUIET, QUIET, QUIET])).toEqual([2]);
    // Load that goes on past that tick is activity again.
    expect(compactsAt([BUSY, QUIET, QUIET, BUSY, BUSY, QUIET, QUIET])).toEqual([2, 6]);
  });

  it("activity after a compaction earns the next one", () => {
    expect(compactsAt([BUSY, QUIET, QUIET, QUIET, BUSY, QUIET, QUIET])).toEqual([2, 6]);
  });
});

describe("startIdleCompaction", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads the utilization every tick and compacts when the decision says so; stop ends it", () => {
    vi.useFakeTimers();
    const readings = [BUSY, QUIET, QUIET, QUIET, BUSY, QUIET];
    const compact = vi.fn();
    const stop = startIdleCompaction({ utilization: () => readings.shift() ?? QUIET, compact });
    vi.advanceTimersByTime(IDLE_COMPACTION_TICK_MS * 2);
    expect(compact).not.toHaveBeenCalled();
    vi.advanceTimersByTime(IDLE_COMPACTION_TICK_MS);
    expect(compact).toHaveBeenCalledTimes(1);
    stop();
    vi.advanceTimersByTime(IDLE_COMPACTION_TICK_MS * 10);
    expect(compact).toHaveBeenCalledTimes(1);
    expect(readings).toHaveLength(3);
  });

  it("leaves one timer, which stop clears", () => {
    vi.useFakeTimers();
    const stop = startIdleCompaction({ utilization: () => QUIET, compact: () => {} });
    expect(vi.getTimerCount()).toBe(1);
    stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("in a process of its own", () => {
  it("the timer never keeps the process alive", () => {
    const script = `import { startIdleCompaction } from ${moduleUrl}; startIdleCompaction(); console.log("started");`;
    // With a referenced timer this would run until the timeout kills it (and throw).
    expect(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], {
        encoding: "utf8",
        timeout: 10_000,
      }),
    ).toBe("started\n");
  });

  // A heap grown by a burst keeps its pages after its objects die; the default compaction gives
  // them back. In a process of its own: the flag dance must not touch the tests'.
  it("leaves V8's flags as they were, so modules loaded afterwards still hit the compile cache", () => {
    const cache = mkdtempSync(join(tmpdir(), "mcp-sidecar-cache-"));
    try {
      const env = { ...process.env, NODE_COMPILE_CACHE: cache };
      const config = JSON.stringify(new URL("../proxy/config.ts", import.meta.url).href);
      execFileSync(process.execPath, ["--input-type=module", "-e", `await import(${config});`], { env });
      const script = `import { lastResortCollection } from ${moduleUrl}; lastResortCollection()(); await import(${config});`;
      const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        env: { ...env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" },
        encoding: "utf8",
      });
      const verdicts = `${run.stdout}${run.stderr}`
        .split("\n")
        .filter(
          (line) =>
            line.includes("ESM file:") && line.includes("/proxy/config.ts") && /accepted|rejected/.test(line),
        );
      expect(verdicts).toHaveLength(1);
      expect(verdicts[0]).toContain("was accepted");
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it("in a process started with --expose-gc, uses its gc and leaves the flag on", () => {
    const script = `import { runInNewContext } from "node:vm";
      import { lastResortCollection } from ${moduleUrl};
      lastResortCollection()();
      console.log(typeof globalThis.gc, runInNewContext("typeof gc"));`;
    expect(
      execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
        encoding: "utf8",
      }),
    ).toBe("function function\n");
  });

  it("returns the pages a burst left behind, in a real V8", () => {
    const script = `
      import { lastResortCollection } from ${moduleUrl};
      const compact = lastResortCollection();
      let keep = [];
      for (let round = 0; round < 40; round++) {
        keep.push(Array.from({ length: 20000 }, (_, i) => ({ i, s: "x" + i })));
      }
      keep = null;
      await new Promise((r) => setTimeout(r, 50));
      const before = process.memoryUsage();
      compact();
      await new Promise((r) => setTimeout(r, 500));
      const after = process.memoryUsage();
      console.log(JSON.stringify({ before, after, gcVisible: typeof globalThis.gc }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, [...SIDECAR_NODE_FLAGS, "--input-type=module", "-e", script], {
        encoding: "utf8",
      }),
    ) as { before: NodeJS.MemoryUsage; after: NodeJS.MemoryUsage; gcVisible: string };
    expect(out.gcVisible).toBe("undefined");
    // Measured with the image's flags: heap 19 -> 6 MB and RSS 125 -> 66 MB; a regular major
    // collection leaves 17 MB of heap and the RSS where it was.
    expect(out.after.heapTotal).toBeLessThan(out.before.heapTotal / 2);
    expect(out.before.rss - out.after.rss).toBeGreaterThan(30 * 2 ** 20);
  });
});
