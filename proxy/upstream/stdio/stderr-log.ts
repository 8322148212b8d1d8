// A child's stderr in the sidecar's log: line by line, at info level (stderr is where stdio
// servers write everything that is not protocol, not only errors), each line cut to a bounded
// length, their rate bounded by a token bucket (a flood is summarised, not logged), and the last
// lines kept for the report of the child's exit.

export interface StderrLogSettings {
  readonly maxLineBytes: number;
  /** Token bucket: lines per second, and the burst above it. */
  readonly linesPerSecond: number;
  readonly burst: number;
  /** Lines kept for the exit report. */
  readonly tailLines: number;
}

export const STDERR_LOG_SETTINGS: StderrLogSettings = Object.freeze({
  maxLineBytes: 2048,
  linesPerSecond: 50,
  burst: 200,
  tailLines: 10,
});

export class StderrLog {
  readonly #log: (fields: Record<string, unknown>, message: string) => void;
  readonly #settings: StderrLogSettings;
  readonly #now: () => number;
  #partial = "";
  #tokens: number;
  #refilledAt: number;
  #dropped = 0;
  readonly #tail: string[] = [];

  constructor(
    log: (fields: Record<string, unknown>, message: string) => void,
    settings = STDERR_LOG_SETTINGS,
    now: () => number = Date.now,
  ) {
    this.#log = log;
    this.#settings = settings;
    this.#now = now;
    this.#tokens = settings.burst;
    this.#refilledAt = now();
  }

  write(text: string): void {
    const lines = (this.#partial + text).split(/\r?\n/);
    this.#partial = lines.pop() as string;
    // A line that never ends is still bounded.
    if (this.#partial.length > this.#settings.maxLineBytes) {
      lines.push(this.#partial);
      this.#partial = "";
    }
    for (const line of lines) this.#line(line);
  }

  /** The child is gone: its unfinished last line, and the count of what was dropped. */
  flush(): void {
    if (this.#partial !== "") this.#line(this.#partial);
    this.#partial = "";
    this.#reportDropped();
  }

  tail(): readonly string[] {
    return this.#tail;
  }

  #line(raw: string): void {
    const line =
      raw.length > this.#settings.maxLineBytes ? `${raw.slice(0, this.#settings.maxLineBytes)}…[cut]` : raw;
    this.#tail.push(line);
    if (this.#tail.length > this.#settings.tailLines) this.#tail.shift();
    const now = this.#now();
    this.#tokens = Math.min(
      this.#settings.burst,
      this.#tokens + ((now - this.#refilledAt) / 1000) * this.#settings.linesPerSecond,
    );
    this.#refilledAt = now;
    if (this.#tokens < 1) {
      this.#dropped++;
      return;
    }
    this.#tokens--;
    this.#reportDropped();
    this.#log({ stream: "stderr", line }, "stdio server stderr");
  }

  #reportDropped(): void {
    if (this.#dropped === 0) return;
    this.#log({ stream: "stderr", dropped: this.#dropped }, "stdio server stderr lines dropped (rate limit)");
    this.#dropped = 0;
  }
}
