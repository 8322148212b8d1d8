// An upstream event stream on its way to the client: keepalive comments while it is silent, and an
// end that a drain can ask for, both only ever between two events (a comment or a `retry:` inside
// a half-written event would corrupt it).

import type { ServerResponse } from "node:http";
import {
  SSE_KEEPALIVE_FRAME,
  SseEventBoundary,
  type SseKeepaliveTimer,
  sseRetryFrame,
  startSseKeepalive,
} from "../../protocol/sse.ts";

export class SseRelay {
  readonly #res: ServerResponse;
  readonly #boundary = new SseEventBoundary();
  readonly #keepalive: SseKeepaliveTimer;
  readonly #onKeepalive: () => void;
  /** Set when an end was asked for while an upstream event was half written. */
  #endPending: { readonly retryMs: number | undefined; readonly ended: () => void } | undefined;
  keepalives = 0;

  constructor(res: ServerResponse, keepaliveMs: number, onKeepalive: () => void) {
    this.#res = res;
    this.#onKeepalive = onKeepalive;
    this.#keepalive = startSseKeepalive(keepaliveMs, this.#onSilence);
  }

  /** A chunk of the upstream's stream, about to be written to the client. */
  observe(chunk: Buffer): void {
    this.#boundary.observe(chunk);
    this.#keepalive.touch();
  }

  /** After a chunk went out: ends the stream now if an end is pending and the chunk closed an event. */
  endIfDue(): void {
    const pending = this.#endPending;
    if (pending !== undefined && this.#boundary.atBoundary) this.#end(pending.retryMs, pending.ended);
  }

  /**
   * Ends the stream at the next event boundary (now, if it is at one): an SSE `retry:` field first
   * when `retryMs` is given (2025-era clients reconnect after it), then the terminating chunk.
   * `ended` runs when it does.
   */
  endAtBoundary(retryMs: number | undefined, ended: () => void): void {
    if (this.#boundary.atBoundary) this.#end(retryMs, ended);
    else this.#endPending = { retryMs, ended };
  }

  stop(): void {
    this.#keepalive.stop();
  }

  #end(retryMs: number | undefined, ended: () => void): void {
    this.#endPending = undefined;
    this.#keepalive.stop();
    ended();
    if (retryMs !== undefined) this.#res.end(sseRetryFrame(retryMs));
    else this.#res.end();
  }

  #onSilence = (): void => {
    if (!this.#boundary.atBoundary || this.#res.writableEnded) return;
    this.keepalives++;
    this.#onKeepalive();
    this.#res.write(SSE_KEEPALIVE_FRAME);
  };
}
