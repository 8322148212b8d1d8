// Children that die before their first answer failed to start (a bad command, a missing module, a
// crash at boot). Starting more at once would only spin: new starts back off, capped and
// exponential, and /ready says why until a child answers again. Pure: the clock is given.

const START_BACKOFF_BASE_MS = 200;
const START_BACKOFF_CAP_MS = 30_000;

export class StartBackoff {
  readonly #now: () => number;
  #failures = 0;
  #last: { readonly at: number; readonly reason: string } | undefined;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** A child died before it answered; `reason` names the command and how it exited. */
  failed(reason: string): void {
    this.#failures++;
    this.#last = { at: this.#now(), reason };
  }

  /** A child answered: starting works again. */
  succeeded(): void {
    this.#failures = 0;
    this.#last = undefined;
  }

  /** How long new starts must still wait (0: start now). */
  left(): number {
    if (this.#last === undefined) return 0;
    const wait = Math.min(START_BACKOFF_CAP_MS, START_BACKOFF_BASE_MS * 2 ** (this.#failures - 1));
    return Math.max(0, this.#last.at + wait - this.#now());
  }

  /** Why the last start failed, while starting is failing. */
  get reason(): string | undefined {
    return this.#last?.reason;
  }

  /** For /ready: undefined while starting works. */
  describe(): string | undefined {
    if (this.#last === undefined) return undefined;
    const left = this.left();
    const next = left > 0 ? `; next try in ${Math.ceil(left / 1000)} s` : "";
    return `children cannot be started: ${this.#last.reason} (${this.#failures} in a row${next})`;
  }
}
