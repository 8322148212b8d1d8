// The timer half of the drain shell: runs the pure state machine (drain.ts), owns the delay and
// timeout timers, and hands every other action to the socket owner. No sockets here, so the
// timing is tested with fake timers (test/drain.test.ts, "DrainController").

import {
  type DrainAction,
  type DrainEvent,
  type DrainSettings,
  type DrainState,
  drainTransition,
  INITIAL_DRAIN_STATE,
} from "./drain.ts";

export type SocketAction = Exclude<DrainAction, { type: "start-timer" } | { type: "clear-timers" }>;

export class DrainController {
  readonly #settings: DrainSettings;
  readonly #perform: (action: SocketAction) => void;
  #state: DrainState = INITIAL_DRAIN_STATE;
  #timers: ReturnType<typeof setTimeout>[] = [];

  constructor(settings: DrainSettings, perform: (action: SocketAction) => void) {
    this.#settings = settings;
    this.#perform = perform;
  }

  get state(): DrainState {
    return this.#state;
  }

  dispatch(event: DrainEvent): void {
    const step = drainTransition(this.#state, event, this.#settings);
    this.#state = step.state;
    for (const action of step.actions) {
      switch (action.type) {
        case "start-timer": {
          const next: DrainEvent = action.timer === "delay" ? { type: "delay-elapsed" } : { type: "timeout" };
          // Not unref'd: while draining, the timeout is what guarantees the process ends.
          this.#timers.push(setTimeout(() => this.dispatch(next), action.ms));
          break;
        }
        case "clear-timers":
          for (const timer of this.#timers) clearTimeout(timer);
          this.#timers = [];
          break;
        default:
          this.#perform(action);
      }
    }
  }
}
