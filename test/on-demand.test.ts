// On-demand refreshes for unknown API keys, on a manual clock: at most one per second, each request
// waits for the first refresh that started after it arrived, the wait and the waiters are bounded.
import { describe, expect, it } from "vitest";
import { OnDemandRefresh } from "../proxy/secrets/on-demand.ts";
import { ManualScheduler } from "./helpers/manual-scheduler.ts";

const SETTINGS = { minIntervalMs: 1000, maxWaitMs: 2000, maxWaiters: 3 };

/** A refresh the test finishes by hand; `known` is what it has learnt so far. */
function harness(settings = SETTINGS) {
  const scheduler = new ManualScheduler();
  const starts: number[] = [];
  const pending: (() => void)[] = [];
  let servedByAgent = false;
  let known = false;
  const refresh = new OnDemandRefresh(
    () => {
      starts.push(scheduler.now());
      // What the agent serves when the request goes out is what the refresh learns.
      const learns = servedByAgent;
      return new Promise<void>((resolve) =>
        pending.push(() => {
          known ||= learns;
          resolve();
        }),
      );
    },
    scheduler,
    settings,
  );
  const flush = async () => {
    for (const finish of pending.splice(0)) finish();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return {
    scheduler,
    refresh,
    starts,
    flush,
    rotate: () => {
      servedByAgent = true;
    },
    wait: () => refresh.wait(() => known),
    get t0() {
      return 1_800_000_000_000;
    },
  };
}

describe("OnDemandRefresh (manual clock)", () => {
  it("starts at once when idle; requests arriving meanwhile share the refresh in flight", async () => {
    const h = harness();
    h.rotate();
    const first = h.wait();
    const second = h.wait();
    expect(h.starts).toEqual([h.t0]);
    await h.flush();
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(h.refresh.runs).toBe(1);
  });

  it("never starts two refreshes less than a second apart, however many unknown keys arrive", async () => {
    const h = harness({ ...SETTINGS, maxWaiters: 1000 });
    const waits: Promise<boolean>[] = [];
    // 100 unknown keys a second for 5 seconds, every refresh answering at once.
    for (let ms = 0; ms < 5000; ms += 10) {
      waits.push(h.wait());
      await h.scheduler.advance(10);
      await h.flush();
    }
    await h.scheduler.advance(2000);
    await h.flush();
    expect(await Promise.all(waits)).toEqual(waits.map(() => false));
    const gaps = h.starts.slice(1).map((at, i) => at - (h.starts[i] as number));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1000);
    expect(h.starts.length).toBeLessThanOrEqual(6);
  });

  it("accepts a rotated key within a second of its first use, even just after junk spent a refresh", async () => {
    const h = harness();
    const junk = h.wait();
    await h.flush();
    expect(await junk).toBe(false);
    // 1 ms after the junk's refresh: the agent now serves the new key, and a client presents it.
    await h.scheduler.advance(1);
    h.rotate();
    const usedAt = h.scheduler.now();
    const good = h.wait();
    await h.scheduler.advance(998);
    expect(h.starts).toHaveLength(1);
    await h.scheduler.advance(1);
    expect(h.starts).toEqual([h.t0, h.t0 + 1000]);
    await h.flush();
    expect(await good).toBe(true);
    expect(h.scheduler.now() - usedAt).toBeLessThanOrEqual(1000);
  });

  it("a request that arrives while a refresh is in flight also waits for the next one, if that one did not know the key", async () => {
    const h = harness();
    const early = h.wait(); // starts a refresh, still in flight
    h.rotate(); // the agent serves the key only after that refresh went out
    const late = h.wait();
    await h.flush();
    expect(await early).toBe(false);
    let settled = false;
    void late.then(() => {
      settled = true;
    });
    await h.flush();
    expect(settled).toBe(false);
    await h.scheduler.advance(1000);
    await h.flush();
    expect(await late).toBe(true);
  });

  it("bounds the wait: a refresh that does not answer within maxWaitMs means not known", async () => {
    const h = harness();
    h.rotate();
    const waiting = h.wait();
    await h.scheduler.advance(1999);
    let settled = false;
    void waiting.then(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    await h.scheduler.advance(1);
    expect(await waiting).toBe(false);
    expect(h.refresh.waiting).toBe(0);
  });

  it("bounds the waiters: past maxWaiters the answer is not known, at once, and nothing is queued", async () => {
    const h = harness();
    const waits = [h.wait(), h.wait(), h.wait()];
    expect(h.refresh.waiting).toBe(3);
    expect(await h.wait()).toBe(false);
    expect(h.refresh.waiting).toBe(3);
    // The first started the refresh; the other two arrived while it was in flight, so they wait for
    // the next one too.
    await h.flush();
    await h.scheduler.advance(1000);
    await h.flush();
    expect(await Promise.all(waits)).toEqual([false, false, false]);
    expect(h.refresh.waiting).toBe(0);
    expect(h.scheduler.pending).toBe(0);
  });

  it("after stop(), waits end at once and no refresh starts", async () => {
    const h = harness();
    const first = h.wait();
    await h.flush();
    await first;
    const scheduled = h.wait();
    h.refresh.stop();
    expect(await scheduled).toBe(false);
    expect(await h.wait()).toBe(false);
    await h.scheduler.advance(5000);
    expect(h.starts).toHaveLength(1);
  });
});
