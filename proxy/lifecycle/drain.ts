// The drain on SIGTERM as a pure state machine: (state, event) -> (state, actions). No timers, no
// sockets: the shell (sidecar.ts, through drain-controller.ts) applies the actions and feeds back
// events. Unit-tested transition by transition in test/drain.test.ts.
//
// Why by MCP call and not by connection: a 2026-07-28 client treats a closed response stream as a
// cancelled call, and a 2025-11-25 client loses a POST stream's result when it is cut, so every
// request that ends by itself is allowed to end; only the streams that never end by themselves
// (standalone GET streams, legacy SSE, `subscriptions/listen`) are closed, cleanly.

export type DrainPhase = "serving" | "delaying" | "draining" | "stopped";

export interface DrainSettings {
  /** Keep serving this long after the stop request while readiness fails (load balancer catch-up). */
  readonly delayMs: number;
  /** From the stop request to cutting what is still in flight. */
  readonly timeoutMs: number;
}

export interface DrainOutcome {
  /** 0 when everything in flight finished by itself; 1 when something was cut. */
  readonly exitCode: 0 | 1;
  /** How many requests were cut (at the timeout, or by a forced stop). */
  readonly cut: number;
  readonly reason: "drained" | "timeout" | "forced";
}

export interface DrainState {
  readonly phase: DrainPhase;
  readonly inFlight: number;
  readonly outcome: DrainOutcome | undefined;
}

export type DrainEvent =
  /** First SIGTERM/SIGINT, or `close()`. Idempotent once stopping. */
  | { readonly type: "stop-requested" }
  /** Second signal, or `destroy()`: stop now. */
  | { readonly type: "force-requested" }
  | { readonly type: "delay-elapsed" }
  | { readonly type: "timeout" }
  /** The number of forwarded requests in flight changed. */
  | { readonly type: "in-flight"; readonly count: number };

export type DrainTimer = "delay" | "timeout";

export type DrainAction =
  /** `/ready` answers 503 `draining` from now on. */
  | { readonly type: "fail-readiness" }
  | { readonly type: "start-timer"; readonly timer: DrainTimer; readonly ms: number }
  | { readonly type: "clear-timers" }
  /**
   * Take no new work: answer every new request 503 + Connection: close + Retry-After (health and
   * readiness excepted), and close idle keep-alive connections.
   */
  | { readonly type: "stop-accepting" }
  /** End (not destroy) the streams that never end by themselves. */
  | { readonly type: "close-endless-streams" }
  /** Destroy whatever is still in flight, logging each. */
  | { readonly type: "cut-in-flight" }
  | { readonly type: "finish"; readonly outcome: DrainOutcome };

export interface DrainStep {
  readonly state: DrainState;
  readonly actions: readonly DrainAction[];
}

export const INITIAL_DRAIN_STATE: DrainState = Object.freeze({
  phase: "serving",
  inFlight: 0,
  outcome: undefined,
});

function finish(state: DrainState, outcome: DrainOutcome, before: DrainAction[] = []): DrainStep {
  return {
    state: { phase: "stopped", inFlight: state.inFlight, outcome },
    actions: [...before, { type: "clear-timers" }, { type: "finish", outcome }],
  };
}

/** Entering the draining phase proper: stop taking work, end endless streams, and maybe finish. */
function beginDraining(state: DrainState, actions: DrainAction[]): DrainStep {
  actions.push({ type: "stop-accepting" }, { type: "close-endless-streams" });
  if (state.inFlight === 0) return finish(state, { exitCode: 0, cut: 0, reason: "drained" }, actions);
  return { state: { ...state, phase: "draining" }, actions };
}

export function drainTransition(state: DrainState, event: DrainEvent, settings: DrainSettings): DrainStep {
  if (state.phase === "stopped") {
    return { state: event.type === "in-flight" ? { ...state, inFlight: event.count } : state, actions: [] };
  }

  switch (event.type) {
    case "in-flight": {
      const next = { ...state, inFlight: event.count };
      if (state.phase === "draining" && event.count === 0) {
        return finish(next, { exitCode: 0, cut: 0, reason: "drained" });
      }
      return { state: next, actions: [] };
    }

    case "stop-requested": {
      if (state.phase !== "serving") return { state, actions: [] };
      const actions: DrainAction[] = [
        { type: "fail-readiness" },
        { type: "start-timer", timer: "timeout", ms: settings.timeoutMs },
      ];
      if (settings.delayMs > 0) {
        actions.push({ type: "start-timer", timer: "delay", ms: settings.delayMs });
        return { state: { ...state, phase: "delaying" }, actions };
      }
      return beginDraining(state, actions);
    }

    case "delay-elapsed": {
      if (state.phase !== "delaying") return { state, actions: [] };
      return beginDraining(state, []);
    }

    case "timeout": {
      const cut = state.inFlight;
      const actions: DrainAction[] = [{ type: "stop-accepting" }];
      if (cut > 0) actions.push({ type: "cut-in-flight" });
      return finish(
        state,
        { exitCode: cut > 0 ? 1 : 0, cut, reason: cut > 0 ? "timeout" : "drained" },
        actions,
      );
    }

    case "force-requested": {
      const cut = state.inFlight;
      const actions: DrainAction[] = [];
      if (state.phase === "serving") actions.push({ type: "fail-readiness" });
      actions.push({ type: "stop-accepting" });
      if (cut > 0) actions.push({ type: "cut-in-flight" });
      return finish(
        state,
        { exitCode: cut > 0 ? 1 : 0, cut, reason: cut > 0 ? "forced" : "drained" },
        actions,
      );
    }
  }
}
