// A clock and timers the test moves by hand (fake timers for the secrets poller only: the HTTP
// underneath keeps its real timers). advance() fires due timers in order and, after each, waits for
// the work it started to settle.
import type { Scheduler } from "../../proxy/secrets/runtime.ts";

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

export class ManualScheduler implements Scheduler {
  time = 1_800_000_000_000;
  #timers: Timer[] = [];
  #next = 1;
  /** Deterministic jitter: the middle of the range unless a test sets it. */
  randomValue = 0.5;
  /** Awaited after each fired timer (e.g. the runtime's settled()). */
  settle: () => Promise<void> = async () => {};
  /** Every delay that was scheduled, in order, for assertions on the schedule. */
  readonly delays: number[] = [];

  now(): number {
    return this.time;
  }

  random(): number {
    return this.randomValue;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { id: this.#next++, at: this.time + ms, callback };
    this.delays.push(ms);
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }

  get pending(): number {
    return this.#timers.length;
  }

  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const due = this.#timers[0];
      if (!due || due.at > until) break;
      this.#timers.shift();
      this.time = due.at;
      due.callback();
      await this.settle();
    }
    this.time = until;
  }
}
