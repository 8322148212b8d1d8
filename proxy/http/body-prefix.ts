// The first bytes of a request body, kept to learn its JSON-RPC id (an error answer quotes it) and
// MCP method, and the one bounded wait for the rest of a body that is still arriving. Used by the
// forwarding path (which streams the body on at the same time) and by the drain's 503 answers.

import type { IncomingMessage } from "node:http";

/**
 * How long an answer the sidecar gives itself (an upstream failure, a 401, a 503 while draining)
 * waits for the rest of the request body, to quote its JSON-RPC id: worth a short wait, not an
 * unbounded one; a stalled upload gets its answer without the id.
 */
export const ANSWER_BODY_WAIT_MS = 1000;

/**
 * Chunks of a body up to `limit` bytes, as the buffers already read (no copies). Past the limit
 * nothing is kept: a body that large is not a message whose id the sidecar could quote anyway.
 */
export class BodyPrefix {
  readonly #limit: number;
  #chunks: Buffer[] | undefined = [];
  #bytes = 0;
  #complete = false;
  #waiters: (() => void)[] | undefined;

  constructor(limit: number) {
    this.#limit = limit;
  }

  take(chunk: Buffer): void {
    if (this.#chunks === undefined) return;
    if (this.#bytes + chunk.length > this.#limit) this.drop();
    else {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
    }
  }

  /** Nothing more is worth keeping (the body is over a limit): waiters need not wait. */
  drop(): void {
    this.#chunks = undefined;
    this.#wake();
  }

  end(): void {
    this.#complete = true;
    this.#wake();
  }

  /** True once the body outgrew the limit (or broke): nothing of it is kept. */
  get dropped(): boolean {
    return this.#chunks === undefined;
  }

  /** True once the body is complete, or known to be beyond what is kept. */
  get settled(): boolean {
    return this.#complete || this.#chunks === undefined;
  }

  /** The whole body, when it is complete and within the limit; else undefined. */
  get bytes(): Buffer | undefined {
    const chunks = this.#chunks;
    if (!this.#complete || chunks === undefined) return undefined;
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  }

  /**
   * Calls `then` once settled, or after `waitMs` at most: an answer is worth a short wait for the id
   * in the body, not an unbounded one (a stalled upload still gets its answer).
   */
  whenSettled(waitMs: number, then: () => void): void {
    if (this.settled) {
      then();
      return;
    }
    let ran = false;
    const once = () => {
      if (ran) return;
      ran = true;
      clearTimeout(timer);
      then();
    };
    const timer = setTimeout(once, waitMs);
    timer.unref();
    this.#waiters ??= [];
    this.#waiters.push(once);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = undefined;
    if (waiters) for (const wake of waiters) wake();
  }
}

/**
 * Reads a body nobody else consumes, for its first `limit` bytes, within `waitMs`: the complete body,
 * or undefined when it is larger, slower or broken.
 */
export function readBodyPrefix(
  req: IncomingMessage,
  limit: number,
  waitMs: number,
): Promise<Buffer | undefined> {
  const prefix = new BodyPrefix(limit);
  const onData = (chunk: Buffer) => prefix.take(chunk);
  const onEnd = () => prefix.end();
  const onError = () => prefix.drop();
  req.on("data", onData).on("end", onEnd).on("error", onError);
  return new Promise((resolve) => {
    prefix.whenSettled(waitMs, () => {
      req.off("data", onData).off("end", onEnd).off("error", onError);
      resolve(prefix.bytes);
    });
  });
}

/** Reads a whole request body, up to `limit` bytes; undefined when it is larger. */
export function readWhole(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // A declared length over the limit, or the first byte past it: the answer (a 413 that closes
    // the connection) need not wait for the rest of a body that may be gigabytes long.
    if (Number(req.headers["content-length"] ?? 0) > limit) {
      resolve(undefined);
      return;
    }
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else resolve(undefined);
    });
    req.once("end", () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.once("error", reject);
  });
}
