// A bounded copy of an MCP response, kept to tell a result from a JSON-RPC error after the fact:
// the head of a JSON body, the tail of an event stream (its last event is the response). It holds
// references to the chunks already written to the client, never copies. Pure.

import { type Answer, answerOf } from "./outcome.ts";

/** Bodies up to this size are kept (as references to the chunks already read) to name the call. */
export const CAPTURE_LIMIT_BYTES = 64 * 1024;

export class ResponseCapture {
  readonly #eventStream: boolean;
  readonly #limit: number;
  /** undefined once a JSON body outgrew the limit: its answer cannot be read. */
  #chunks: Buffer[] | undefined = [];
  #bytes = 0;

  constructor(eventStream: boolean, limit = CAPTURE_LIMIT_BYTES) {
    this.#eventStream = eventStream;
    this.#limit = limit;
  }

  keep(chunk: Buffer): void {
    const chunks = this.#chunks;
    if (chunks === undefined) return;
    if (!this.#eventStream) {
      if (this.#bytes + chunk.length > this.#limit) {
        this.#chunks = undefined;
        return;
      }
      chunks.push(chunk);
      this.#bytes += chunk.length;
      return;
    }
    chunks.push(chunk);
    this.#bytes += chunk.length;
    // Keep the shortest tail that still holds at least `limit` bytes (the last event may span chunks).
    while (chunks.length > 1 && this.#bytes - (chunks[0] as Buffer).length >= this.#limit) {
      this.#bytes -= (chunks.shift() as Buffer).length;
    }
  }

  /** The JSON-RPC answer in what was kept, when there is one to read. */
  answer(): Answer | undefined {
    const chunks = this.#chunks;
    if (chunks === undefined || chunks.length === 0) return undefined;
    return answerOf(Buffer.concat(chunks).toString("utf8"), this.#eventStream);
  }
}
