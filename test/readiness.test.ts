import { describe, expect, it, vi } from "vitest";
import { CachedCheck, type CheckResult, evaluateReadiness } from "../proxy/lifecycle/readiness.ts";

const up: CheckResult = { name: "upstream", ok: true };
const down: CheckResult = { name: "upstream", ok: false, reason: "connection refused by 127.0.0.1:3000" };

describe("evaluateReadiness", () => {
  it("is ready when serving and every check passes", () => {
    expect(evaluateReadiness("serving", [up, { name: "secret:api-key", ok: true }])).toEqual({
      ready: true,
      state: "serving",
      reasons: [],
      checks: [up, { name: "secret:api-key", ok: true }],
    });
  });

  it("lists every failing check as a reason", () => {
    const report = evaluateReadiness("serving", [
      down,
      { name: "secret:db", ok: false, reason: "not loaded yet" },
    ]);
    expect(report.ready).toBe(false);
    expect(report.reasons).toEqual([
      "upstream: connection refused by 127.0.0.1:3000",
      "secret:db: not loaded yet",
    ]);
  });

  it.each(["delaying", "draining"] as const)("is never ready while %s, and says draining", (phase) => {
    const report = evaluateReadiness(phase, [up]);
    expect(report).toMatchObject({ ready: false, state: "draining", reasons: ["sidecar is draining"] });
  });
});

describe("CachedCheck", () => {
  it("runs at most once per ttl, and shares a run in progress", async () => {
    let now = 0;
    const run = vi.fn(async () => up);
    const check = new CachedCheck(run, 2000, () => now);
    const [a, b] = await Promise.all([check.get(), check.get()]);
    expect(a).toBe(up);
    expect(b).toBe(up);
    expect(run).toHaveBeenCalledTimes(1);
    now = 1999;
    await check.get();
    expect(run).toHaveBeenCalledTimes(1);
    now = 2000;
    await check.get();
    expect(run).toHaveBeenCalledTimes(2);
  });

  it("caches failures too, until invalidated", async () => {
    let result = down;
    const run = vi.fn(async () => result);
    const check = new CachedCheck(run, 2000, () => 0);
    expect((await check.get()).ok).toBe(false);
    result = up;
    expect((await check.get()).ok).toBe(false);
    check.invalidate();
    expect((await check.get()).ok).toBe(true);
    expect(check.peek()).toBe(up);
  });
});
