// The answer streams of a stdio session's plain calls, written by the sidecar itself: one SSE
// response per POST that carries one JSON-RPC request (a `tools/call`, a `resources/read`, ...),
// holding that request's progress and then its answer, as the MCP SDK's Streamable HTTP transport
// writes them (same status, headers and event framing). Everything else a session's client sends
// (its initialize, notifications, batches, anything the SDK would refuse) still goes through the
// SDK's transport, which validates it and answers its errors.
//
// Why by hand: measured on the stdio bench (SDK 1.x client, server-everything, 10 sessions), the
// SDK's transport is most of the sidecar's CPU per call: it turns each Node request into a web
// Request, validates the body with zod, and writes the answer through a web ReadableStream piped
// back into the Node response. A call needs none of that: its body is already read and parsed,
// and its answer is one event.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";
import { SSE_KEEPALIVE_FRAME, type SseKeepaliveTimer, startSseKeepalive } from "../../protocol/sse.ts";
import { requestKey as key } from "./messages.ts";

/** A request the SDK's JSONRPCRequestSchema accepts exactly as it is (no key it would refuse). */
export interface PlainRequest {
  readonly jsonrpc: "2.0";
  readonly id: RequestId;
  readonly method: string;
  readonly params?: Record<string, unknown>;
}

/** Whether header `name` (lower case) is sent once: Node keeps only the first of some, the SDK sees all. */
function onlyOne(rawHeaders: readonly string[], name: string): boolean {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const header = rawHeaders[i] as string;
    if (header.length === name.length && header.toLowerCase() === name) seen++;
  }
  return seen === 1;
}

const REQUEST_KEYS = new Set(["jsonrpc", "id", "method", "params"]);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A `_meta` key the SDK's schema types (and so validates); a request with it goes to the SDK. */
const RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task";

/**
 * The one request `body` carries, when the SDK's transport would take it unchanged and answer it
 * on an SSE stream of its own: not an initialize, not a batch, a string or integer id, `params` an
 * object, its `_meta` an object whose progress token, if any, is a string or an integer (the
 * schema's other keys pass as they are). Undefined sends the POST through the SDK, which validates it.
 */
export function plainRequestOf(body: unknown): PlainRequest | undefined {
  if (!isPlainObject(body) || body.jsonrpc !== "2.0") return undefined;
  const { id, method, params } = body;
  if (typeof method !== "string" || method === "initialize") return undefined;
  // The schema's z.number().int() is a safe integer: a larger id would be refused by an SDK child.
  if (typeof id !== "string" && !Number.isSafeInteger(id)) return undefined;
  for (const name in body) if (!REQUEST_KEYS.has(name)) return undefined;
  if (params !== undefined) {
    if (!isPlainObject(params)) return undefined;
    const meta = params._meta;
    if (meta !== undefined) {
      if (!isPlainObject(meta) || RELATED_TASK_META_KEY in meta) return undefined;
      const token = meta.progressToken;
      if (token !== undefined && typeof token !== "string" && !Number.isSafeInteger(token)) return undefined;
    }
  }
  return body as unknown as PlainRequest;
}

/**
 * Whether the POST's headers pass the SDK transport's checks for a request after initialize: it
 * accepts both JSON and SSE (a substring test, as the SDK's), its body is JSON, it names the session
 * once, and its MCP-Protocol-Version, when sent, is one the SDK supports. Only the plain
 * `Content-Type: application/json` a client sends is taken here (the SDK parses any other, and
 * sees repeated headers joined): anything else goes to the SDK, which judges and answers its error.
 */
export function headersPassSdkChecks(
  req: IncomingMessage,
  sessionId: string,
  supportedVersions: readonly string[],
): boolean {
  const accept = req.headers.accept;
  if (accept === undefined || !accept.includes("application/json") || !accept.includes("text/event-stream"))
    return false;
  if (req.headers["content-type"] !== "application/json" || !onlyOne(req.rawHeaders, "content-type"))
    return false;
  if (req.headers["mcp-session-id"] !== sessionId) return false;
  const version = req.headers["mcp-protocol-version"];
  return version === undefined || (typeof version === "string" && supportedVersions.includes(version));
}

interface AnswerStream {
  readonly res: ServerResponse;
  readonly keepalive: SseKeepaliveTimer;
}

export class AnswerStreams {
  readonly #streams = new Map<string, AnswerStream>();
  readonly #keepAliveMs: number;

  constructor(keepAliveMs: number) {
    this.#keepAliveMs = keepAliveMs;
  }

  /** The session is done with request `id` without an answer (its client cancelled it): its stream ends. */
  endWithoutAnswer(id: RequestId): void {
    this.#end(key(id), undefined);
  }

  /** Opens request `id`'s stream: the SDK's status and headers, sent at once (the call may be long). */
  open(res: ServerResponse, id: RequestId, sessionId: string): void {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "mcp-session-id": sessionId,
    });
    res.flushHeaders();
    const k = key(id);
    const keepalive = startSseKeepalive(this.#keepAliveMs, () => {
      if (!res.writableEnded) res.write(SSE_KEEPALIVE_FRAME);
    });
    this.#streams.set(k, { res, keepalive });
    // A client that leaves before the answer: the answer, when it comes, has nowhere to go.
    res.once("close", () => {
      keepalive.stop();
      if (this.#streams.get(k)?.res === res) this.#streams.delete(k);
    });
  }

  /**
   * Writes `message` on request `id`'s stream, and ends the stream when it is the answer. False
   * when `id` has no stream here (it came through the SDK's transport, or its client left).
   */
  deliver(id: RequestId, message: JSONRPCMessage, isAnswer: boolean): boolean {
    const k = key(id);
    const stream = this.#streams.get(k);
    if (stream === undefined) return false;
    const event = `event: message\ndata: ${JSON.stringify(message)}\n\n`;
    // The keepalive keeps its own beat, as the SDK's interval does, whatever else is written.
    if (isAnswer) this.#end(k, event);
    else stream.res.write(event);
    return true;
  }

  /** The session is over: every stream still open ends (as the SDK's close ends its own). */
  closeAll(): void {
    for (const k of [...this.#streams.keys()]) this.#end(k, undefined);
  }

  /** Ends stream `k`, with `lastEvent` when there is one to write. */
  #end(k: string, lastEvent: string | undefined): void {
    const stream = this.#streams.get(k);
    if (stream === undefined) return;
    this.#streams.delete(k);
    stream.keepalive.stop();
    stream.res.end(lastEvent);
  }
}
