// One forwarded request: client request -> undici dispatch -> client response, streamed both ways.
//
// Written against undici's low-level dispatch handler API rather than `request()`/`stream()`: a
// sidecar pays its per-request cost in every task, and the handler API avoids the intermediate
// Readable and header object per response (measured against nginx by bench/run.ts).
//
// The exchange records transport facts only; what they mean in MCP terms is protocol/outcome.ts,
// and what is reported is one ExchangeSummary, handed to the observer when the response closes.
// Its outcome follows one rule: the first thing that ends the exchange names it (#settle), except
// the drain's own decisions (closed_by_drain, cut), which have the last word (#override).

import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { SIDECAR_ERRORS, type SidecarErrorSpec } from "../../errors.ts";
import { type SidecarAnswerOptions, writeSidecarError } from "../../http/answers.ts";
import { ANSWER_BODY_WAIT_MS, type BodyPrefix } from "../../http/body-prefix.ts";
import { clientResponseHeaders } from "../../http/headers.ts";
import { classifyTransportError } from "../../http/transport-errors.ts";
import { describeJsonRpc, type McpMessageInfo } from "../../protocol/jsonrpc.ts";
import { LegacyPost, type LegacyStream } from "../../protocol/legacy-sse.ts";
import {
  classifyExchange,
  type ExchangeKind,
  type ExchangeOutcome,
  type StreamKind,
  streamKindOf,
} from "../../protocol/outcome.ts";
import { ResponseCapture } from "../../protocol/response-capture.ts";
import type { ExchangeSummary, UpstreamErrorKind } from "../../telemetry/exchange-summary.ts";
import type { CutExchange } from "../../telemetry/telemetry.ts";
import {
  type AdmittedRequest,
  describeAdmitted,
  type ExchangeObserver,
  type InFlightExchange,
  summarize,
} from "../upstream.ts";
import { BEFORE_ANSWER, type ExchangeRoute, keptBody, swapSessionId, wholeBody } from "./exchange-route.ts";
import {
  CALL_CUT,
  declaredTooLarge,
  ExchangeAbortedError,
  type HttpExchangeSettings,
  isPeerForward,
  UNREACHABLE,
  UPSTREAM_FAILURES,
} from "./exchange-settings.ts";
import { sendBody } from "./request-body.ts";
import { SseRelay } from "./sse-relay.ts";

export class HttpExchange implements Dispatcher.DispatchHandler, InFlightExchange {
  readonly kind: ExchangeKind;
  readonly #request: AdmittedRequest;
  readonly #settings: HttpExchangeSettings;
  readonly #observer: ExchangeObserver;
  #controller: Dispatcher.DispatchController | undefined;
  #outcome: ExchangeOutcome | undefined;
  #status = 0;
  #errorCode: string | undefined;
  #upstreamMs: number | undefined;
  #streamKind: StreamKind | undefined;
  #upstreamErrorKind: UpstreamErrorKind | undefined;
  /** The start of the request body (references to the chunks read): its id and MCP method. */
  #body: BodyPrefix | undefined;
  #message: McpMessageInfo | undefined | null = null;
  /** The start or end of the response, to tell a result from an error (MCP requests only). */
  #response: ResponseCapture | undefined;
  /** Set when the response is an event stream. */
  #sse: SseRelay | undefined;
  /** A legacy HTTP+SSE GET stream: the requests posted to its session, answered on it. */
  #legacyStream: LegacyStream | undefined;
  /** A POST to a legacy session, whose answers are due on the session's stream. */
  #legacyPost: LegacyPost | undefined;
  readonly #route: ExchangeRoute | undefined;
  /** The router took the request back (ExchangeRoute.handBack): nothing more of this exchange. */
  #handedBack = false;

  constructor(
    request: AdmittedRequest,
    settings: HttpExchangeSettings,
    observer: ExchangeObserver,
    route?: ExchangeRoute,
  ) {
    this.#request = request;
    this.kind = classifyExchange(request.req.method ?? "GET", request.head);
    this.#settings = settings;
    this.#observer = observer;
    this.#route = route;
    request.res.once("close", this.#onClientClose);
  }

  /** Starts the upstream request (the request's headers are final). */
  start(): void {
    const { req, head } = this.#request;
    const tooLarge = declaredTooLarge(head.contentLength, this.#settings.maxBodyBytes);
    if (tooLarge !== undefined) {
      this.#settle("body_too_large");
      this.#answer(SIDECAR_ERRORS.bodyTooLarge, tooLarge, { close: true });
      return;
    }
    const read = this.#route?.body;
    if (read !== undefined) {
      this.#body = read === null ? undefined : wholeBody(read);
      this.#dispatch(read);
      return;
    }
    const legacy = req.method === "POST" ? this.#settings.legacy.streamFor(req.url ?? "/") : undefined;
    if (legacy !== undefined) this.#legacyPost = new LegacyPost(legacy);
    this.#body = sendBody(req, head, this.#settings.maxBodyBytes, {
      dispatch: (body) => this.#dispatch(body),
      tooLarge: () => this.#settle("body_too_large"),
      ended: () => this.#outcome !== undefined,
      complete: () => this.#legacyPost?.posted(this.#readMessage()?.ids ?? []),
    });
  }

  #dispatch(body: Buffer | Readable | null): void {
    const { req, headers } = this.#request;
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

  /** The JSON-RPC message(s) of a POST body, once it is complete; undefined when unknown. */
  #readMessage(): McpMessageInfo | undefined {
    if (this.#message !== null) return this.#message;
    if (this.#request.req.method !== "POST") return undefined;
    const bytes = this.#body?.bytes;
    if (bytes === undefined) return undefined;
    this.#message = describeJsonRpc(bytes);
    return this.#message;
  }

  // ---- undici DispatchHandler ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#outcome !== undefined) controller.abort(new ExchangeAbortedError(this.#outcome));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // 1xx: Node answers Expect: 100-continue itself; other interim responses are not relayed.
    if (statusCode < 200) return;
    const { req, res, head } = this.#request;
    const { headers, eventStream } = clientResponseHeaders((controller.rawHeaders ?? []) as Buffer[]);
    if (this.#offerBack({ status: statusCode, headers })) return;
    this.#upstreamMs = performance.now() - this.#request.startedAt;
    this.#status = statusCode;
    if (statusCode >= 300) this.#legacyPost?.failed();
    const swap = this.#route?.clientSessionId;
    if (swap !== undefined) swapSessionId(headers, swap, keptBody(this.#body, head));
    if (statusMessage) res.writeHead(statusCode, statusMessage, headers);
    else res.writeHead(statusCode, headers);
    const bodyKept = req.method === "POST" && this.#body !== undefined && !this.#body.dropped;
    if (bodyKept || head.mcpMethod !== undefined) this.#response = new ResponseCapture(eventStream);
    if (eventStream) {
      this.#streamKind = streamKindOf(req.method ?? "GET", this.kind, head);
      this.#observer.streamOpened(this.#streamKind);
      this.#sse = new SseRelay(res, this.#settings.sseKeepaliveMs, () => this.#observer.keepaliveSent());
      if (this.#streamKind === "legacy_sse") this.#legacyStream = this.#settings.legacy.open(req.url ?? "/");
      // The client must see the stream open before the first event, which may be minutes away.
      res.flushHeaders();
    } else if (isPeerForward(this.#settings, req)) res.flushHeaders();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#request.res;
    this.#sse?.observe(chunk);
    this.#response?.keep(chunk);
    if (!res.write(chunk)) {
      controller.pause();
      res.once("drain", () => controller.resume());
    }
    // After the write: an answer that lets a drain end the stream has reached the client first.
    this.#legacyStream?.feed(chunk);
    this.#sse?.endIfDue();
  }

  onResponseEnd(): void {
    this.#sse?.stop();
    this.#settle("completed");
    this.#request.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#handedBack) return;
    this.#sse?.stop();
    this.#legacyPost?.failed();
    const { req, res } = this.#request;
    const outcome = this.#outcome;
    // Ended from this side (client gone, drain): the upstream request was aborted on purpose.
    if (error instanceof ExchangeAbortedError || outcome === "client_closed" || outcome === "cut") {
      if (!res.writableEnded && !res.destroyed && outcome !== "closed_by_drain") res.destroy();
      return;
    }
    if (outcome === "closed_by_drain") return;
    if (outcome === "body_too_large") {
      const answered = this.#answer(
        SIDECAR_ERRORS.bodyTooLarge,
        `request body exceeds --max-body-size (${this.#settings.maxBodyBytes} bytes)`,
        { close: true },
      );
      if (!answered) res.destroy();
      return;
    }
    const { failure, detail } = classifyTransportError(error);
    const before = BEFORE_ANSWER[failure];
    if (!res.headersSent && before !== undefined && this.#offerBack(before)) return;
    this.#settle("upstream_error");
    if (failure === "refused") this.#settings.onRefused();
    const [spec, kind] = UPSTREAM_FAILURES[failure] ?? UNREACHABLE;
    this.#errorCode = spec.code;
    if (res.headersSent) {
      // Mid-response: the status is gone; an incomplete message is the only truthful signal left.
      this.#upstreamErrorKind = "reset_mid_response";
      res.destroy();
      return;
    }
    this.#upstreamErrorKind = kind;
    // The JSON-RPC id lives in the body, which may still be arriving: read it (bounded) first.
    const answer = () => this.#answer(spec, `upstream MCP server failed (${detail})`);
    const body = this.#body;
    if (body === undefined || body.settled || req.complete || req.destroyed) answer();
    else {
      body.whenSettled(ANSWER_BODY_WAIT_MS, answer);
      // undici destroyed the body it was fed, which may have paused `req`: let the rest arrive.
      req.resume();
    }
  }

  // ---- drain ----

  /**
   * Ends an endless stream cleanly, at an event boundary (sse-relay.ts): 2025-era GET streams get an
   * SSE `retry:` field and reconnect after it, through the load balancer, to another task; a 2026
   * listen POST just ends. Not a destroy.
   */
  closeEndless(retryMs: number): void {
    const { req, res } = this.#request;
    if (this.kind !== "endless" || res.writableEnded || res.destroyed) return;
    const retry = req.method === "GET" ? retryMs : undefined;
    if (!res.headersSent) {
      this.#override("closed_by_drain");
      this.#answer(SIDECAR_ERRORS.draining, "sidecar is draining; retry on another instance", {
        close: true,
        retryAfterMs: retry,
      });
      return;
    }
    // Asked for a stream but answered with a plain body: it ends by itself; ending it here would
    // truncate it. It runs to its end like any call.
    const sse = this.#sse;
    if (sse === undefined) return;
    const end = () => sse.endAtBoundary(retry, () => this.#override("closed_by_drain"));
    // A legacy stream carries the answers to what was posted to its session: those first.
    if (this.#legacyStream !== undefined) this.#legacyStream.whenAnswered(end);
    else end();
  }

  /** Drain timeout or forced stop: stop now. */
  cut(): void {
    const res = this.#request.res;
    if (res.destroyed || res.writableFinished) return;
    // A peer's forward is answered, not reset, before the abort below would (exchange-settings.ts);
    // small, it is in the kernel's buffer at once, before the drain closes the socket.
    const answered =
      !res.headersSent &&
      isPeerForward(this.#settings, this.#request.req) &&
      this.#answer(SIDECAR_ERRORS.callCut, CALL_CUT, { close: true });
    this.#override("cut");
    this.#sse?.stop();
    if (!answered) res.destroy();
  }

  describe(): CutExchange {
    return describeAdmitted(this.#request, this.#readMessage(), this.kind);
  }

  // ---- outcome ----
  /** The first thing that ends the exchange names its outcome. */
  #settle(outcome: ExchangeOutcome): void {
    this.#outcome ??= outcome;
  }

  /** The drain's decisions end the exchange whatever else happened, and stop the upstream request. */
  #override(outcome: "closed_by_drain" | "cut"): void {
    this.#outcome = outcome;
    this.#controller?.abort(new ExchangeAbortedError(outcome));
  }

  #summary(): ExchangeSummary {
    const response = this.#response;
    return summarize(this.#request, {
      kind: this.kind,
      outcome: this.#outcome ?? "completed",
      status: this.#status,
      message: this.#readMessage(),
      readAnswer: () => response?.answer(),
      upstreamMs: this.#upstreamMs,
      errorCode: this.#errorCode,
      keepalives: this.#sse?.keepalives ?? 0,
      streamKind: this.#streamKind,
      upstreamErrorKind: this.#upstreamErrorKind,
    });
  }

  // ---- internals ----
  /** Offers the answer (or the failure to get one) back to the router: true when it took the request. */
  #offerBack(answer: Parameters<NonNullable<ExchangeRoute["handBack"]>>[0]): boolean {
    if (this.#route?.handBack?.(answer, keptBody(this.#body, this.#request.head)) !== true) return false;
    this.#handedBack = true;
    this.#sse?.stop();
    this.#request.res.off("close", this.#onClientClose);
    this.#controller?.abort(new ExchangeAbortedError("handed_back"));
    return true;
  }

  #onClientClose = (): void => {
    if (this.#handedBack) return;
    this.#sse?.stop();
    this.#legacyStream?.close();
    const res = this.#request.res;
    if (!res.writableFinished && this.#outcome === undefined) {
      // The client went away: abort upstream too (in 2026-07-28 that is how a call is cancelled).
      this.#outcome = "client_closed";
      this.#controller?.abort(new ExchangeAbortedError("client_closed"));
    }
    this.#observer.exchangeFinished(res, this.#summary());
  };

  /** The sidecar's own error answer, quoting the request's id when the body is known. */
  #answer(spec: SidecarErrorSpec, text: string, options: SidecarAnswerOptions = {}): boolean {
    const answered = writeSidecarError(this.#request.res, spec, text, {
      ...options,
      message: this.#readMessage(),
    });
    if (answered) [this.#status, this.#errorCode] = [spec.status, spec.code];
    return answered;
  }
}
