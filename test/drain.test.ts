import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type DrainEvent,
  type DrainState,
  drainTransition,
  INITIAL_DRAIN_STATE,
} from "../proxy/lifecycle/drain.ts";
import { DrainController, type SocketAction } from "../proxy/lifecycle/drain-controller.ts";

const settings = { delayMs: 0, timeoutMs: 25_000 };
const delayed = { delayMs: 5_000, timeoutMs: 25_000 };

function run(events: DrainEvent[], s = settings, from: DrainState = INITIAL_DRAIN_STATE) {
  let state = from;
  const actions: string[] = [];
  for (const event of events) {
    const step = drainTransition(state, event, s);
    state = step.state;
    for (const action of step.actions) {
      actions.push(
        action.type === "start-timer"
          ? `start-timer:${action.timer}:${action.ms}`
          : action.type === "finish"
            ? `finish:${action.outcome.exitCode}:${action.outcome.reason}:${action.outcome.cut}`
            : action.type,
      );
    }
  }
  return { state, actions };
}

describe("drainTransition", () => {
  it("serving: in-flight changes only update the count", () => {
    const { state, actions } = run([{ type: "in-flight", count: 3 }]);
    expect(state).toEqual({ phase: "serving", inFlight: 3, outcome: undefined });
    expect(actions).toEqual([]);
  });

  it("stop with nothing in flight finishes at once with exit 0, without waiting for a timer", () => {
    const { state, actions } = run([{ type: "stop-requested" }]);
    expect(state.phase).toBe("stopped");
    expect(state.outcome).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
    expect(actions).toEqual([
      "fail-readiness",
      "start-timer:timeout:25000",
      "stop-accepting",
      "close-endless-streams",
      "clear-timers",
      "finish:0:drained:0",
    ]);
  });

  it("stop with work in flight fails readiness first, stops accepting, closes endless streams, and waits", () => {
    const { state, actions } = run([{ type: "in-flight", count: 2 }, { type: "stop-requested" }]);
    expect(state.phase).toBe("draining");
    expect(actions).toEqual([
      "fail-readiness",
      "start-timer:timeout:25000",
      "stop-accepting",
      "close-endless-streams",
    ]);
  });

  it("draining: finishes with exit 0 the moment the last request ends", () => {
    const { state, actions } = run([
      { type: "in-flight", count: 2 },
      { type: "stop-requested" },
      { type: "in-flight", count: 1 },
      { type: "in-flight", count: 0 },
    ]);
    expect(state.phase).toBe("stopped");
    expect(actions.slice(-2)).toEqual(["clear-timers", "finish:0:drained:0"]);
  });

  it("with a drain delay: keeps serving (readiness failed) until the delay elapses", () => {
    const { state, actions } = run([{ type: "in-flight", count: 1 }, { type: "stop-requested" }], delayed);
    expect(state.phase).toBe("delaying");
    expect(actions).toEqual(["fail-readiness", "start-timer:timeout:25000", "start-timer:delay:5000"]);
    // Requests ending during the delay do not end the drain early: the load balancer is still routing.
    const during = run([{ type: "in-flight", count: 0 }], delayed, state);
    expect(during.state.phase).toBe("delaying");
    const after = run([{ type: "delay-elapsed" }], delayed, during.state);
    expect(after.actions).toEqual([
      "stop-accepting",
      "close-endless-streams",
      "clear-timers",
      "finish:0:drained:0",
    ]);
  });

  it("delay elapsed with work in flight: drains", () => {
    const { state, actions } = run(
      [{ type: "in-flight", count: 4 }, { type: "stop-requested" }, { type: "delay-elapsed" }],
      delayed,
    );
    expect(state.phase).toBe("draining");
    expect(actions.slice(-2)).toEqual(["stop-accepting", "close-endless-streams"]);
  });

  it("timeout cuts what is left and exits non-zero", () => {
    const { state, actions } = run([
      { type: "in-flight", count: 3 },
      { type: "stop-requested" },
      { type: "timeout" },
    ]);
    expect(state.outcome).toEqual({ exitCode: 1, cut: 3, reason: "timeout" });
    expect(actions.slice(-4)).toEqual([
      "stop-accepting",
      "cut-in-flight",
      "clear-timers",
      "finish:1:timeout:3",
    ]);
  });

  it("timeout during the delay still stops (the delay can never outlive the stop budget)", () => {
    const { state } = run(
      [{ type: "in-flight", count: 1 }, { type: "stop-requested" }, { type: "timeout" }],
      delayed,
    );
    expect(state.outcome?.reason).toBe("timeout");
  });

  it("a second stop request is a no-op (close() is idempotent)", () => {
    const first = run([{ type: "in-flight", count: 1 }, { type: "stop-requested" }]);
    const second = run([{ type: "stop-requested" }], settings, first.state);
    expect(second.actions).toEqual([]);
    expect(second.state).toEqual(first.state);
  });

  it("force (second signal, destroy) stops at once and cuts what is in flight", () => {
    const draining = run([{ type: "in-flight", count: 2 }, { type: "stop-requested" }]).state;
    const { state, actions } = run([{ type: "force-requested" }], settings, draining);
    expect(state.outcome).toEqual({ exitCode: 1, cut: 2, reason: "forced" });
    expect(actions).toEqual(["stop-accepting", "cut-in-flight", "clear-timers", "finish:1:forced:2"]);
  });

  it("force while serving fails readiness too; with nothing in flight it exits 0", () => {
    const { actions } = run([{ type: "force-requested" }]);
    expect(actions).toEqual(["fail-readiness", "stop-accepting", "clear-timers", "finish:0:drained:0"]);
  });

  it("stopped is terminal", () => {
    const stopped = run([{ type: "stop-requested" }]).state;
    for (const event of [
      { type: "stop-requested" },
      { type: "force-requested" },
      { type: "timeout" },
      { type: "delay-elapsed" },
    ] as DrainEvent[]) {
      expect(drainTransition(stopped, event, settings).actions).toEqual([]);
    }
  });
});

describe("DrainController (timers, fake clock)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function controller(s = settings) {
    const performed: SocketAction["type"][] = [];
    const drain = new DrainController(s, (action) => performed.push(action.type));
    return { drain, performed };
  }

  it("fires the timeout at exactly the drain timeout", () => {
    vi.useFakeTimers();
    const { drain, performed } = controller();
    drain.dispatch({ type: "in-flight", count: 1 });
    drain.dispatch({ type: "stop-requested" });
    vi.advanceTimersByTime(24_999);
    expect(drain.state.phase).toBe("draining");
    vi.advanceTimersByTime(1);
    expect(drain.state.outcome).toEqual({ exitCode: 1, cut: 1, reason: "timeout" });
    expect(performed).toContain("cut-in-flight");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("runs the delay, then drains, then clears the timeout when the last request ends", () => {
    vi.useFakeTimers();
    const { drain, performed } = controller(delayed);
    drain.dispatch({ type: "in-flight", count: 1 });
    drain.dispatch({ type: "stop-requested" });
    expect(performed).toEqual(["fail-readiness"]);
    vi.advanceTimersByTime(4_999);
    expect(drain.state.phase).toBe("delaying");
    vi.advanceTimersByTime(1);
    expect(drain.state.phase).toBe("draining");
    expect(performed).toEqual(["fail-readiness", "stop-accepting", "close-endless-streams"]);
    drain.dispatch({ type: "in-flight", count: 0 });
    expect(drain.state.outcome).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("idle: finishes without leaving a timer behind", () => {
    vi.useFakeTimers();
    const { drain } = controller({ delayMs: 0, timeoutMs: 60_000 });
    drain.dispatch({ type: "stop-requested" });
    expect(drain.state.phase).toBe("stopped");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("force during the delay clears both timers", () => {
    vi.useFakeTimers();
    const { drain } = controller(delayed);
    drain.dispatch({ type: "in-flight", count: 1 });
    drain.dispatch({ type: "stop-requested" });
    expect(vi.getTimerCount()).toBe(2);
    drain.dispatch({ type: "force-requested" });
    expect(vi.getTimerCount()).toBe(0);
    expect(drain.state.outcome?.reason).toBe("forced");
  });
});
