// How a request body goes upstream, counted against --max-body-size, with its first 64 KiB kept (as
// the chunks read, no copies) so that the exchange can name the call and quote its id.

import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { BodyPrefix } from "../../http/body-prefix.ts";
import type { RequestHeadInfo } from "../../http/headers.ts";
import { CAPTURE_LIMIT_BYTES } from "../../protocol/response-capture.ts";

export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

export interface BodyHooks {
  /** Starts the upstream request with this body (at once, or once a small body is complete). */
  dispatch(body: Buffer | Readable | null): void;
  /** The body grew over --max-body-size while streaming (the stream then fails). */
  tooLarge(): void;
  /** True when the exchange already ended, so a small body that completes is not sent. */
  ended(): boolean;
  /** The whole body is in (before a buffered body is sent on). */
  complete(): void;
}

/**
 * Sends the body of `req` upstream and returns what is kept of it (undefined: no body).
 *
 * A body with a Content-Length of at most 64 KiB (any MCP message; it arrives in a segment or two)
 * goes upstream in the same write as the request head once it is in: a Buffer body is a single
 * writev for undici, a stream is a head write, chunk writes and a Readable per request (measured:
 * about a tenth of the CPU per request). Larger and chunked bodies stream as they come.
 */
export function sendBody(
  req: IncomingMessage,
  head: RequestHeadInfo,
  maxBodyBytes: number,
  hooks: BodyHooks,
): BodyPrefix | undefined {
  const length = head.contentLength;
  if (!head.chunked && (length === undefined || length === "0")) {
    hooks.dispatch(null);
    return undefined;
  }
  const prefix = new BodyPrefix(CAPTURE_LIMIT_BYTES);
  if (!head.chunked && Number(length) <= CAPTURE_LIMIT_BYTES) {
    req.on("data", (chunk: Buffer) => prefix.take(chunk));
    req.once("end", () => {
      prefix.end();
      hooks.complete();
      if (!hooks.ended()) hooks.dispatch(prefix.bytes ?? null);
    });
    return prefix;
  }
  let bytes = 0;
  const take = (chunk: Buffer): boolean => {
    bytes += chunk.length;
    if (bytes > maxBodyBytes) {
      hooks.tooLarge();
      prefix.drop();
      return false;
    }
    prefix.take(chunk);
    return true;
  };
  hooks.dispatch(
    new RequestBodySource(req, take, () => {
      prefix.end();
      hooks.complete();
    }),
  );
  return prefix;
}

/**
 * Feeds the request body to undici as it arrives. A separate Readable, not `req` itself, because
 * undici destroys its body on an upstream error, and the sidecar still needs `req` then: to read the
 * JSON-RPC id for the error answer.
 */
class RequestBodySource extends Readable {
  readonly #req: IncomingMessage;

  constructor(req: IncomingMessage, take: (chunk: Buffer) => boolean, ended: () => void) {
    super();
    this.#req = req;
    req.on("data", (chunk: Buffer) => {
      if (!take(chunk)) {
        if (!this.destroyed) this.destroy(new BodyTooLargeError());
        return;
      }
      if (!this.destroyed && !this.push(chunk)) req.pause();
    });
    req.on("end", () => {
      ended();
      if (!this.destroyed) this.push(null);
    });
    req.on("error", (error) => {
      if (!this.destroyed) this.destroy(error);
    });
  }

  override _read(): void {
    this.#req.resume();
  }
}
