// Server-Sent Events framing, as far as a forwarding proxy needs it: where an upstream event ends
// (so a keepalive comment or a `retry:` field never lands inside one), and a keepalive timer.
// Pure apart from the keepalive's unref'd timer; see test/sse.test.ts.

/**
 * Tracks whether everything written so far ends at an SSE event boundary: a blank line, that is two
 * line terminators in a row (CRLF, LF or CR each count as one; WHATWG HTML §9.2.6). The start of a
 * stream counts as a boundary. Only the last four bytes matter ("\r\n\r\n" is the longest ending).
 */
export class SseEventBoundary {
  #tail = "\n\n";

  observe(chunk: Uint8Array): void {
    const length = chunk.length;
    if (length === 0) return;
    let end = "";
    for (let i = Math.max(0, length - 4); i < length; i++) end += String.fromCharCode(chunk[i] as number);
    this.#tail = length >= 4 ? end : (this.#tail + end).slice(-4);
  }

  get atBoundary(): boolean {
    return countTrailingLineTerminators(this.#tail) >= 2;
  }
}

/**
 * Counts terminators from the right, treating CR LF as one (pairing from the right gives the same
 * pairs as the left-to-right parse: CR only pairs with the LF after it). Stops at two.
 */
export function countTrailingLineTerminators(text: string): number {
  let count = 0;
  let end = text.length;
  while (count < 2 && end > 0) {
    const last = text.charCodeAt(end - 1);
    if (last === 0x0a) {
      end -= end >= 2 && text.charCodeAt(end - 2) === 0x0d ? 2 : 1;
    } else if (last === 0x0d) {
      end -= 1;
    } else {
      break;
    }
    count++;
  }
  return count;
}

/**
 * The events of an SSE text: the parts between blank lines (any two line terminators in a row). A
 * CR directly followed by LF is one terminator, never two (WHATWG HTML §9.2.6).
 */
export function sseEvents(text: string): string[] {
  return text.split(/(?:\r\n|\r(?!\n)|\n){2}/);
}

/** One event's data: its `data:` lines (one optional space after the colon) joined by "\n". */
export function sseEventData(event: string): string | undefined {
  const data: string[] = [];
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
  }
  return data.length > 0 ? data.join("\n") : undefined;
}

/** A comment line the SSE parsers ignore, closed as its own (empty, never dispatched) event. */
export const SSE_KEEPALIVE_FRAME = ": keepalive\n\n";

/** The `retry:` field that tells a 2025-era client to reconnect after `ms` (and elsewhere). */
export function sseRetryFrame(ms: number): string {
  return `retry: ${Math.max(0, Math.round(ms))}\n\n`;
}

export interface SseKeepaliveTimer {
  /** Data went out: restart the silence window. */
  touch(): void;
  stop(): void;
}

const NO_KEEPALIVE: SseKeepaliveTimer = { touch() {}, stop() {} };

/**
 * After `intervalMs` without data, calls `onSilence` (which writes a keepalive when the stream is at
 * an event boundary) and re-arms. `intervalMs <= 0` disables it. The timer is unref'd so an idle
 * stream never holds the process open, and `refresh()` keeps the per-chunk cost to one call.
 */
export function startSseKeepalive(intervalMs: number, onSilence: () => void): SseKeepaliveTimer {
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) return NO_KEEPALIVE;
  let stopped = false;
  const timer = setTimeout(function fire() {
    if (stopped) return;
    onSilence();
    if (!stopped) timer.refresh();
  }, intervalMs);
  timer.unref();
  return {
    touch() {
      if (!stopped) timer.refresh();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
