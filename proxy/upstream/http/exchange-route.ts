// What session routing (upstream/routing/) may ask of one exchange, and the small pure steps the
// exchange takes for it: a body read beforehand, the Mcp-Session-Id swapped on the response.

import { BodyPrefix } from "../../http/body-prefix.ts";
import { headerValue, type RequestHeadInfo, setHeader } from "../../http/headers.ts";
import type { TransportFailure } from "../../http/transport-errors.ts";

/**
 * How session routing (upstream/routing/) shapes one exchange; without it, a plain forward. The
 * hooks run before anything reaches the client, so the client never sees what they replace.
 */
export interface ExchangeRoute {
  /** The body, already read whole (null: none): a request served a second time sends it again. */
  readonly body?: Buffer | null;
  /**
   * The Mcp-Session-Id the client gets in place of the upstream's (`upstream`: the response's own,
   * if any; `requestBody`: the request body when it was kept whole); undefined: none at all.
   */
  readonly clientSessionId?: (
    upstream: string | undefined,
    requestBody: Buffer | undefined,
  ) => string | undefined;
  /**
   * Whether this answer, or this failure before any of an answer (`unreachable`: no connection, so
   * nothing was sent; `lost`: the connection broke first), goes back to the router rather than to
   * the client: when it returns true the exchange ends silently and the router serves the request
   * again (`requestBody`: null for none, undefined when not kept whole).
   */
  readonly handBack?: (
    answer: { readonly status: number; readonly headers: readonly string[] } | "unreachable" | "lost",
    requestBody: Buffer | null | undefined,
  ) => boolean;
}

/** Transport failures before an answer, as a hand-back names them. */
export const BEFORE_ANSWER: Partial<Record<TransportFailure, "unreachable" | "lost">> = {
  refused: "unreachable",
  connect_timeout: "unreachable",
  connection_lost: "lost",
};

/** A body read whole beforehand, kept as the exchange keeps one it reads itself. */
export function wholeBody(bytes: Buffer): BodyPrefix {
  const body = new BodyPrefix(bytes.length);
  body.take(bytes);
  body.end();
  return body;
}

/** The request body as kept whole (null: there is none; undefined: not kept, or not complete). */
export function keptBody(body: BodyPrefix | undefined, head: RequestHeadInfo): Buffer | null | undefined {
  if (body !== undefined) return body.bytes;
  const { contentLength, chunked } = head;
  return !chunked && (contentLength === undefined || contentLength === "0") ? null : undefined;
}

/** Puts the client's Mcp-Session-Id in place of the upstream's in response headers, in place. */
export function swapSessionId(
  headers: string[],
  clientSessionId: NonNullable<ExchangeRoute["clientSessionId"]>,
  requestBody: Buffer | null | undefined,
): void {
  const upstream = headerValue(headers, "mcp-session-id");
  setHeader(headers, "mcp-session-id", clientSessionId(upstream, requestBody ?? undefined));
}
