// On-demand refreshes of the API key secret, for keys no known version matches: maybe a key the
// agent already serves but the sidecar has not polled yet (a rotation), maybe junk. Junk must not
// be able to lock a rotated key out, nor make the sidecar hammer the agent (every refreshNow is a
// billed Secrets Manager call), so:
//
// - refreshes start at most once per MIN_INTERVAL_MS (1 s) per secret, whatever arrives;
// - a request waits for the first refresh that started after it arrived (joining one already in
//   flight first, which may know the key already), so a key the agent serves is accepted within
//   about a second of its first use, however much junk arrives meanwhile;
// - the wait is bounded (MAX_WAIT_MS) and so is the number of waiters (MAX_WAITERS); past either,
//   the answer is "not known" (a 401) at once: never an unbounded queue.
//
// Timers come from the injected Scheduler, so this is tested on a manual clock.

import type { Scheduler } from "./runtime.ts";

export interface OnDemandSettings {
  readonly minIntervalMs: number;
  readonly maxWaitMs: number;
  readonly maxWaiters: number;
}

export const ON_DEMAND_SETTINGS: OnDemandSettings = Object.freeze({
  minIntervalMs: 1000,
  // Two intervals: the refresh in flight, then the next one, each with room for the agent's answer.
  maxWaitMs: 2000,
  maxWaiters: 1024,
});

interface Run {
  /** When it starts (scheduled) or started. */
  startAt: number;
  /** Its place in the order of runs started (0 while scheduled): orders runs against arrivals exactly. */
  index: number;
  readonly done: Promise<void>;
  readonly finish: () => void;
  timer: unknown;
}

export class OnDemandRefresh {
  readonly #refresh: () => Promise<unknown>;
  readonly #scheduler: Scheduler;
  readonly #settings: OnDemandSettings;
  #lastStartAt: number | undefined;
  #inFlight: Run | undefined;
  #scheduled: Run | undefined;
  #waiting = 0;
  #stopped = false;
  /** Refreshes started, for metrics and tests. */
  runs = 0;

  constructor(refresh: () => Promise<unknown>, scheduler: Scheduler, settings = ON_DEMAND_SETTINGS) {
    this.#refresh = refresh;
    this.#scheduler = scheduler;
    this.#settings = settings;
  }

  /** How many requests wait right now. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Resolves true as soon as `known()` holds after a refresh (the one in flight, or the next one
   * that starts after this call), false when a refresh that started after this call did not make
   * it hold, when too many wait already, or when MAX_WAIT_MS passed.
   */
  async wait(known: () => boolean): Promise<boolean> {
    if (this.#stopped || this.#waiting >= this.#settings.maxWaiters) return false;
    // Runs started so far: any later one went out after this request arrived.
    const startedBefore = this.runs;
    this.#waiting++;
    let timer: unknown;
    const deadline = new Promise<"timeout">((resolve) => {
      timer = this.#scheduler.setTimeout(() => resolve("timeout"), this.#settings.maxWaitMs);
    });
    try {
      for (;;) {
        const run = this.#inFlight ?? this.#next();
        if ((await Promise.race([run.done, deadline])) === "timeout") return false;
        if (known()) return true;
        if (this.#stopped || run.index > startedBefore) return false;
      }
    } finally {
      this.#waiting--;
      this.#scheduler.clearTimeout(timer);
    }
  }

  /** Resolves when the refresh in flight (if any) is done: for tests on a manual clock. */
  async settled(): Promise<void> {
    while (this.#inFlight) await this.#inFlight.done;
  }

  /** No more refreshes; whoever waits gets "not known". */
  stop(): void {
    this.#stopped = true;
    const scheduled = this.#scheduled;
    if (scheduled) {
      this.#scheduler.clearTimeout(scheduled.timer);
      this.#scheduled = undefined;
      scheduled.finish();
    }
  }

  /** The next run: the one already scheduled, or a new one, at once when the interval allows. */
  #next(): Run {
    if (this.#scheduled) return this.#scheduled;
    const now = this.#scheduler.now();
    const startAt =
      this.#lastStartAt === undefined ? now : Math.max(now, this.#lastStartAt + this.#settings.minIntervalMs);
    const { promise, resolve } = Promise.withResolvers<void>();
    const run: Run = { startAt, index: 0, done: promise, finish: resolve, timer: undefined };
    if (startAt <= now) this.#start(run);
    else {
      this.#scheduled = run;
      run.timer = this.#scheduler.setTimeout(() => this.#start(run), startAt - now);
    }
    return run;
  }

  #start(run: Run): void {
    if (this.#scheduled === run) this.#scheduled = undefined;
    run.startAt = this.#scheduler.now();
    run.index = ++this.runs;
    this.#lastStartAt = run.startAt;
    this.#inFlight = run;
    const finished = () => {
      if (this.#inFlight === run) this.#inFlight = undefined;
      run.finish();
    };
    this.#refresh().then(finished, finished);
  }
}
