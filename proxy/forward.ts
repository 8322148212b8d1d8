// One forwarded request: client request -> undici dispatch -> client response, streamed both ways.
//
// Written against undici's low-level dispatch handler API rather than `request()`/`stream()`: a
// sidecar pays its per-request cost in every task, and the handler API avoids the intermediate
// Readable and header object per response (issue 8 measures this against nginx).

import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { SIDECAR_ERRORS, type SidecarErrorSpec, sidecarErrorHeaders } from "./errors.ts";
import { clientResponseHeaders, type RequestHeadInfo } from "./http-headers.ts";
import { decodeMcpHeaderValue, describeJsonRpc, type McpMessageInfo, sidecarErrorBody } from "./jsonrpc.ts";
import {
  SSE_KEEPALIVE_FRAME,
  SseEventBoundary,
  type SseKeepaliveTimer,
  sseEventData,
  sseEvents,
  sseRetryFrame,
  startSseKeepalive,
} from "./sse.ts";

/** How long an error answer waits for the rest of a request body, to quote its JSON-RPC id. */
const BODY_WAIT_MS = 1000;

/** Bodies up to this size are kept (as references to the chunks already read) to name the call. */
export const CAPTURE_LIMIT_BYTES = 64 * 1024;

/**
 * `call`: ends by itself and must be allowed to (tools/call above all).
 * `endless`: a stream that only ends when someone closes it: a standalone GET event stream
 * (2025-11-25), a legacy SSE GET, a 2026-07-28 `subscriptions/listen` POST.
 */
export type ExchangeKind = "call" | "endless";

export type ExchangeOutcome =
  | "completed"
  | "upstream_error"
  | "client_closed"
  | "body_too_large"
  | "unauthorized"
  | "closed_by_drain"
  | "cut";

export interface ForwardSettings {
  readonly dispatcher: Dispatcher;
  readonly sseKeepaliveMs: number;
  readonly maxBodyBytes: number;
  readonly upstreamHeadersTimeoutMs: number;
}

/** The kinds of event stream forwarded, for metrics. */
export type StreamKind = "post_response" | "get_standalone" | "legacy_sse" | "listen";

/**
 * How an MCP request ended: a result, a result flagged `isError` (a tool that failed), a JSON-RPC
 * error, or no answer (transport error, cancelled).
 */
export type CallOutcome = "result" | "tool_error" | "jsonrpc_error" | "transport_error" | "cancelled";

export type UpstreamErrorKind = "unreachable" | "connect_timeout" | "headers_timeout" | "reset_mid_response";

export interface ExchangeListener {
  /** An event stream started (headers sent) / a keepalive comment was written. */
  streamOpened(kind: StreamKind): void;
  keepaliveSent(): void;
  /** The upstream refused the connection: readiness should know before its next probe. */
  upstreamUnreachable(): void;
  /** Called once, when the client response is closed (finished or not). */
  exchangeClosed(exchange: Exchange): void;
  /** While draining, answers carry `Connection: close` so clients reconnect elsewhere. */
  readonly draining: boolean;
}

class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

class ExchangeAbortedError extends Error {
  override name = "ExchangeAbortedError";
}

export function classifyExchange(method: string, info: RequestHeadInfo): ExchangeKind {
  if (method === "GET" && info.accept?.includes("text/event-stream")) return "endless";
  if (method === "POST" && info.mcpMethod === "subscriptions/listen") return "endless";
  return "call";
}

/**
 * Feeds the request body to undici while counting it against the limit and keeping the first
 * CAPTURE_LIMIT_BYTES. A separate Readable, not `req` itself, because undici destroys its body on an
 * upstream error, and the sidecar still needs `req` then: to read the JSON-RPC id for the error reply.
 */
class RequestBodySource extends Readable {
  readonly #exchange: Exchange;

  constructor(exchange: Exchange) {
    super();
    this.#exchange = exchange;
    const req = exchange.req;
    req.on("data", (chunk: Buffer) => {
      if (!exchange.takeBodyChunk(chunk)) {
        if (!this.destroyed) this.destroy(new BodyTooLargeError());
        return;
      }
      if (!this.destroyed && !this.push(chunk)) req.pause();
    });
    req.on("end", () => {
      exchange.bodyEnded();
      if (!this.destroyed) this.push(null);
    });
    req.on("error", (error) => {
      if (!this.destroyed) this.destroy(error);
    });
  }

  override _read(): void {
    this.#exchange.req.resume();
  }
}

export class Exchange implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly id: string;
  readonly kind: ExchangeKind;
  readonly head: RequestHeadInfo;
  readonly startedAt = performance.now();
  status = 0;
  outcome: ExchangeOutcome | undefined;
  errorCode: string | undefined;
  /** Bytes of response body sent to the client, keepalives excluded. */
  bytesOut = 0;
  keepalivesSent = 0;
  /** When the upstream began its response, relative to startedAt. */
  upstreamMs: number | undefined;
  /** Set when the response is an event stream. */
  streamKind: StreamKind | undefined;
  upstreamErrorKind: UpstreamErrorKind | undefined;

  readonly #settings: ForwardSettings;
  readonly #listener: ExchangeListener;
  #controller: Dispatcher.DispatchController | undefined;
  #bodyBytes = 0;
  #captured: Buffer[] | undefined;
  #capturedBytes = 0;
  #bodyComplete = false;
  #bodyWaiters: (() => void)[] | undefined;
  #sse: SseEventBoundary | undefined;
  #keepalive: SseKeepaliveTimer | undefined;
  /** Set when a drain asked an endless stream to close but an upstream event was half written. */
  #closeAtBoundary: { retryMs: number | undefined } | undefined;
  #info: McpMessageInfo | undefined | null = null;
  /**
   * A bounded copy of an MCP response, to tell a result from a JSON-RPC error: the head of a JSON
   * body, the tail of an event stream (its last event is the response). References to the chunks
   * already written, not copies.
   */
  #response: Buffer[] | undefined;
  #responseBytes = 0;
  #responseTruncated = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    head: RequestHeadInfo,
    settings: ForwardSettings,
    listener: ExchangeListener,
  ) {
    this.req = req;
    this.res = res;
    this.id = id;
    this.head = head;
    this.kind = classifyExchange(req.method ?? "GET", head);
    this.#settings = settings;
    this.#listener = listener;
    res.once("close", this.#onClientClose);
  }

  /** Starts the upstream request. `headers` come from prepareUpstreamRequest. */
  start(headers: string[]): void {
    const { req } = this;
    const length = this.head.contentLength;
    const hasBody = this.head.chunked || (length !== undefined && length !== "0");
    if (length !== undefined && Number(length) > this.#settings.maxBodyBytes) {
      this.outcome = "body_too_large";
      this.#replyError(
        SIDECAR_ERRORS.bodyTooLarge,
        `request body of ${length} bytes exceeds --max-body-size (${this.#settings.maxBodyBytes} bytes)`,
        true,
      );
      return;
    }
    if (hasBody && req.method === "POST") this.#captured = [];
    if (!hasBody) this.#bodyComplete = true;
    // A body with a Content-Length of at most 64 KiB (any MCP message; it arrives in a segment or
    // two) goes upstream in the same write as the request head once it is in: a Buffer body is a
    // single writev for undici, a stream is a head write, chunk writes and a Readable per request
    // (measured: about a tenth of the CPU per request). Larger and chunked bodies stream as they come.
    if (hasBody && !this.head.chunked && Number(length) <= CAPTURE_LIMIT_BYTES) {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => {
        this.takeBodyChunk(chunk);
        chunks.push(chunk);
      });
      req.once("end", () => {
        this.bodyEnded();
        if (this.outcome !== undefined) return;
        this.#dispatch(headers, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
      });
      return;
    }
    this.#dispatch(headers, hasBody ? new RequestBodySource(this) : null);
  }

  #dispatch(headers: string[], body: Buffer | Readable | null): void {
    const { req } = this;
    this.#settings.dispatcher.dispatch(
      {
        path: req.url ?? "/",
        method: req.method ?? "GET",
        headers,
        body,
        // POSTs are never replayed (tools/call is not idempotent) and nothing is pipelined behind them.
        idempotent: false,
        blocking: true,
        upgrade: null,
        headersTimeout: this.#settings.upstreamHeadersTimeoutMs,
        // An event stream may be silent for minutes between events: no body timeout, ever.
        bodyTimeout: 0,
      },
      this,
    );
  }

  /** Answers with the sidecar's own error instead of forwarding (e.g. 401 from --auth-secret). */
  reject(
    spec: SidecarErrorSpec,
    message: string,
    outcome: ExchangeOutcome,
    headers: Record<string, string> = {},
  ): void {
    this.outcome = outcome;
    for (const [name, value] of Object.entries(headers)) this.res.setHeader(name, value);
    this.#replyError(spec, message, false);
  }

  // ---- request body bookkeeping (called by RequestBodySource) ----

  /** Counts a chunk; false once the body is over the limit. */
  takeBodyChunk(chunk: Buffer): boolean {
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes > this.#settings.maxBodyBytes) {
      if (this.outcome === undefined) this.outcome = "body_too_large";
      this.#captured = undefined;
      return false;
    }
    if (this.#captured !== undefined) {
      if (this.#capturedBytes + chunk.length <= CAPTURE_LIMIT_BYTES) {
        this.#captured.push(chunk);
        this.#capturedBytes += chunk.length;
      } else {
        this.#captured = undefined;
      }
    }
    return true;
  }

  bodyEnded(): void {
    this.#bodyComplete = true;
    const waiters = this.#bodyWaiters;
    this.#bodyWaiters = undefined;
    if (waiters) for (const wake of waiters) wake();
  }

  /** The JSON-RPC message(s) in the body, once it is complete; undefined when unknown. */
  get message(): McpMessageInfo | undefined {
    if (this.#info !== null) return this.#info;
    if (!this.#bodyComplete || this.#captured === undefined || this.#captured.length === 0) return undefined;
    this.#info = describeJsonRpc(
      this.#captured.length === 1 ? (this.#captured[0] as Buffer) : Buffer.concat(this.#captured),
    );
    return this.#info;
  }

  /** The 2026 Mcp-Method / Mcp-Name headers, decoded once (metrics and the log line read them). */
  #mcpHeaders: { readonly method: string | undefined; readonly name: string | undefined } | undefined;
  get #decodedMcpHeaders() {
    this.#mcpHeaders ??= {
      method: decodeMcpHeaderValue(this.head.mcpMethod),
      name: decodeMcpHeaderValue(this.head.mcpName),
    };
    return this.#mcpHeaders;
  }

  /** `tools/call` etc.: the 2026 header when sent, else the body. */
  get mcpMethod(): string | undefined {
    return this.#decodedMcpHeaders.method ?? this.message?.method;
  }

  get mcpName(): string | undefined {
    return this.#decodedMcpHeaders.name ?? this.message?.name;
  }

  get ageMs(): number {
    return performance.now() - this.startedAt;
  }

  // ---- undici DispatchHandler ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.outcome !== undefined) controller.abort(new ExchangeAbortedError(this.outcome));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // 1xx: Node answers Expect: 100-continue itself; other interim responses are not relayed.
    if (statusCode < 200) return;
    const { res } = this;
    this.upstreamMs = performance.now() - this.startedAt;
    this.status = statusCode;
    const { headers, eventStream } = clientResponseHeaders((controller.rawHeaders ?? []) as Buffer[]);
    if (this.#listener.draining) headers.push("connection", "close");
    if (statusMessage) res.writeHead(statusCode, statusMessage, headers);
    else res.writeHead(statusCode, headers);
    if (this.#captured !== undefined || this.head.mcpMethod !== undefined) this.#response = [];
    if (eventStream) {
      const method = this.req.method;
      this.streamKind =
        method === "POST"
          ? this.kind === "endless"
            ? "listen"
            : "post_response"
          : this.head.sessionId !== undefined
            ? "get_standalone"
            : "legacy_sse";
      this.#listener.streamOpened(this.streamKind);
      this.#sse = new SseEventBoundary();
      // The client must see the stream open before the first event, which may be minutes away.
      res.flushHeaders();
      this.#keepalive = startSseKeepalive(this.#settings.sseKeepaliveMs, this.#onSilence);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const sse = this.#sse;
    if (sse !== undefined) {
      sse.observe(chunk);
      this.#keepalive?.touch();
    }
    this.bytesOut += chunk.length;
    if (this.#response !== undefined) this.#keepResponse(chunk, sse !== undefined);
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once("drain", () => controller.resume());
    }
    if (this.#closeAtBoundary !== undefined && sse?.atBoundary)
      this.#endEndless(this.#closeAtBoundary.retryMs);
  }

  onResponseEnd(): void {
    this.#keepalive?.stop();
    if (this.outcome === undefined) this.outcome = "completed";
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#keepalive?.stop();
    const { res } = this;
    if (error instanceof ExchangeAbortedError || this.outcome === "client_closed" || this.outcome === "cut") {
      if (!res.writableEnded && !res.destroyed && this.outcome !== "closed_by_drain") res.destroy();
      return;
    }
    if (this.outcome === "closed_by_drain") return;
    if (this.outcome === "body_too_large") {
      if (!res.headersSent) {
        this.#replyError(
          SIDECAR_ERRORS.bodyTooLarge,
          `request body exceeds --max-body-size (${this.#settings.maxBodyBytes} bytes)`,
          true,
        );
      } else {
        res.destroy();
      }
      return;
    }
    this.outcome = "upstream_error";
    const code = (error as { code?: string }).code;
    let spec: SidecarErrorSpec = SIDECAR_ERRORS.upstreamUnreachable;
    if (code === "UND_ERR_CONNECT_TIMEOUT") spec = SIDECAR_ERRORS.upstreamConnectTimeout;
    else if (code === "UND_ERR_HEADERS_TIMEOUT") spec = SIDECAR_ERRORS.upstreamHeadersTimeout;
    else if (code === "ECONNREFUSED") this.#listener.upstreamUnreachable();
    this.errorCode = spec.code;
    this.upstreamErrorKind =
      spec === SIDECAR_ERRORS.upstreamConnectTimeout
        ? "connect_timeout"
        : spec === SIDECAR_ERRORS.upstreamHeadersTimeout
          ? "headers_timeout"
          : "unreachable";
    if (res.headersSent) {
      // Mid-response: the status is gone; an incomplete message is the only truthful signal left.
      this.upstreamErrorKind = "reset_mid_response";
      res.destroy();
      return;
    }
    const detail = code === undefined ? error.message : `${code}: ${error.message}`;
    // The JSON-RPC id lives in the body, which may still be arriving: read it (bounded) first.
    this.#whenBodyComplete(() => this.#replyError(spec, `upstream MCP server failed (${detail})`, false));
  }

  // ---- drain ----

  /**
   * Ends an endless stream cleanly: for an event stream at an event boundary, an SSE `retry:` field
   * (2025-era clients reconnect after it, through the load balancer, to another task), then the
   * terminating chunk. A half-written upstream event is finished first. Not a destroy.
   */
  closeEndless(retryMs: number | undefined): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    if (!this.res.headersSent) {
      this.outcome = "closed_by_drain";
      this.#controller?.abort(new ExchangeAbortedError("closed_by_drain"));
      this.#replyError(
        SIDECAR_ERRORS.draining,
        "sidecar is draining; retry on another instance",
        true,
        retryMs,
      );
      return;
    }
    // Asked for a stream but answered with a plain body: it ends by itself; ending it here would
    // truncate it. It runs to its end like any call.
    if (this.#sse === undefined) return;
    if (!this.#sse.atBoundary) {
      this.#closeAtBoundary = { retryMs };
      return;
    }
    this.#endEndless(retryMs);
  }

  #endEndless(retryMs: number | undefined): void {
    this.#closeAtBoundary = undefined;
    this.#keepalive?.stop();
    this.outcome = "closed_by_drain";
    this.#controller?.abort(new ExchangeAbortedError("closed_by_drain"));
    const res = this.res;
    if (this.#sse !== undefined && retryMs !== undefined) res.end(sseRetryFrame(retryMs));
    else res.end();
  }

  /** Drain timeout or forced stop: stop now. */
  cut(): void {
    if (this.res.destroyed || this.res.writableFinished) return;
    this.outcome = "cut";
    this.#keepalive?.stop();
    this.#controller?.abort(new ExchangeAbortedError("cut"));
    this.res.destroy();
  }

  // ---- outcome ----

  #keepResponse(chunk: Buffer, stream: boolean): void {
    const response = this.#response as Buffer[];
    if (!stream) {
      if (this.#responseBytes + chunk.length > CAPTURE_LIMIT_BYTES) {
        this.#responseTruncated = true;
        this.#response = undefined;
        return;
      }
      response.push(chunk);
      this.#responseBytes += chunk.length;
      return;
    }
    response.push(chunk);
    this.#responseBytes += chunk.length;
    while (this.#responseBytes - (response[0]?.length ?? 0) >= CAPTURE_LIMIT_BYTES && response.length > 1) {
      this.#responseBytes -= (response.shift() as Buffer).length;
      this.#responseTruncated = true;
    }
  }

  #callOutcome: CallOutcome | undefined | null = null;

  /** How the MCP request ended (computed once, when the exchange is over). */
  get callOutcome(): CallOutcome | undefined {
    if (this.#callOutcome === null) this.#callOutcome = this.#computeCallOutcome();
    return this.#callOutcome;
  }

  #computeCallOutcome(): CallOutcome | undefined {
    switch (this.outcome) {
      case "client_closed":
      case "closed_by_drain":
        return "cancelled";
      case "upstream_error":
      case "cut":
      case "body_too_large":
        return "transport_error";
      case "unauthorized":
        return undefined;
      default:
        break;
    }
    if (this.status === 202 || this.status === 204) return "result";
    const answer = this.#answerMessage();
    if (answer === "error") return "jsonrpc_error";
    if (answer === "tool_error") return "tool_error";
    if (answer === "result") return "result";
    // No readable answer: a large response (results are what grows), or an HTTP-level failure.
    return this.status >= 400 ? "transport_error" : "result";
  }

  /** Whether the JSON-RPC answer in the kept response is a result or an error. */
  #answerMessage(): "result" | "tool_error" | "error" | undefined {
    const response = this.#response;
    if (response === undefined || response.length === 0) return undefined;
    const text = Buffer.concat(response).toString("utf8");
    let message: string | undefined = text;
    if (this.streamKind !== undefined) {
      // The last event that carries data.
      const events = sseEvents(text);
      message = undefined;
      for (let i = events.length - 1; i >= 0 && message === undefined; i--) {
        message = sseEventData(events[i] as string);
      }
    } else if (this.#responseTruncated) {
      return undefined;
    }
    if (message === undefined) return undefined;
    try {
      const parsed = JSON.parse(message) as unknown;
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      let answer: "result" | "tool_error" | undefined;
      for (const item of messages) {
        if (typeof item !== "object" || item === null) continue;
        if ("error" in item) return "error";
        if ("result" in item) {
          const result = (item as { result?: { isError?: unknown } }).result;
          answer = answer === "tool_error" || result?.isError === true ? "tool_error" : "result";
        }
      }
      return answer;
    } catch {
      return undefined;
    }
  }

  // ---- internals ----

  #onSilence = (): void => {
    const sse = this.#sse;
    if (sse === undefined || !sse.atBoundary || this.res.writableEnded) return;
    this.keepalivesSent++;
    this.#listener.keepaliveSent();
    this.res.write(SSE_KEEPALIVE_FRAME);
  };

  #onClientClose = (): void => {
    this.#keepalive?.stop();
    if (!this.res.writableFinished && this.outcome === undefined) {
      // The client went away: abort upstream too (in 2026-07-28 that is how a call is cancelled).
      this.outcome = "client_closed";
      this.#controller?.abort(new ExchangeAbortedError("client_closed"));
    }
    this.#listener.exchangeClosed(this);
  };

  /** Runs `then` once the request body is in, or after BODY_WAIT_MS: a stalled upload still gets its answer. */
  #whenBodyComplete(then: () => void): void {
    if (this.#bodyComplete || this.req.complete || this.req.destroyed) {
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
    const timer = setTimeout(once, BODY_WAIT_MS);
    timer.unref();
    if (this.#bodyWaiters === undefined) this.#bodyWaiters = [];
    this.#bodyWaiters.push(once);
    this.req.resume();
  }

  #replyError(spec: SidecarErrorSpec, message: string, closeConnection: boolean, retryMs?: number): void {
    const { res } = this;
    if (res.headersSent || res.destroyed) return;
    this.status = spec.status;
    this.errorCode = spec.code;
    const body = sidecarErrorBody(this.message, { code: spec.code, status: spec.status }, message);
    res.writeHead(spec.status, sidecarErrorHeaders(body, { close: closeConnection, retryAfterMs: retryMs }));
    res.end(body);
  }
}
