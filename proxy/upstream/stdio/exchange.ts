// One request served by the stdio upstream, as the drain and telemetry see it: in flight until its
// response closes, then one ExchangeSummary. The MCP SDK's transport writes the response; what the
// call's outcome was comes from the child's answer, which the session records by JSON-RPC id.

import type { ServerResponse } from "node:http";
import type { SidecarErrorSpec } from "../../errors.ts";
import { writeSidecarError } from "../../http/answers.ts";
import type { McpMessageInfo } from "../../protocol/jsonrpc.ts";
import {
  type Answer,
  classifyExchange,
  type ExchangeKind,
  type ExchangeOutcome,
} from "../../protocol/outcome.ts";
import type { CutExchange } from "../../telemetry/telemetry.ts";
import {
  type AdmittedRequest,
  describeAdmitted,
  type ExchangeObserver,
  type InFlightExchange,
  summarize,
} from "../upstream.ts";
import type { StdioSession } from "./session.ts";

export class StdioExchange implements InFlightExchange {
  readonly kind: ExchangeKind;
  readonly request: AdmittedRequest;
  /** The request body's JSON-RPC message(s), once read. */
  message: McpMessageInfo | undefined;
  /** The session that served it, once known. */
  session: StdioSession | undefined;
  /** Set when the sidecar answered with its own error. */
  errorCode: string | undefined;
  /** Ends a stateless listen stream (the pool sets it). */
  endStream: (() => void) | undefined;
  #outcome: ExchangeOutcome | undefined;
  readonly #finish: () => void;
  #finished = false;
  /** A legacy POST answered 202, its call still waiting for its answer on the stream. */
  #waitingForStream = false;
  /** How that call ended (undefined: the session ended first). */
  #streamAnswer: Answer | undefined;

  constructor(request: AdmittedRequest, observer: ExchangeObserver) {
    this.request = request;
    this.kind = classifyExchange(request.req.method ?? "GET", request.head);
    const { res } = request;
    res.once("close", () => {
      if (this.#outcome === undefined) this.#outcome = res.writableFinished ? "completed" : "client_closed";
      const id = this.message?.ids[0];
      const session = this.session;
      if (this.#outcome !== "completed" || res.statusCode !== 202 || !session?.isLegacy || id == null) {
        this.#finish();
        return;
      }
      // A legacy POST's call is not over at its 202: its answer comes on the session's stream.
      // Until then it is in flight (the drain waits for it), and its summary says how it ended.
      this.#waitingForStream = true;
      session.onAnswer(id, (answer) => {
        if (answer === undefined && this.#outcome === "completed") this.#outcome = "client_closed";
        this.#streamAnswer = answer;
        this.#finish();
      });
    });
    this.#finish = () => {
      if (this.#finished) return;
      this.#finished = true;
      observer.exchangeFinished(res, this.#summary());
    };
  }

  /** A session's GET stream ends (a legacy one once its answers are out); the client reconnects elsewhere. */
  closeEndless(retryMs: number): void {
    const { res, req } = this.request;
    if (this.kind !== "endless" || res.writableEnded || res.destroyed) return;
    this.#outcome = "closed_by_drain";
    if (req.method === "GET" && this.session !== undefined) this.session.closeStream(retryMs);
    else if (this.endStream !== undefined) this.endStream();
    else res.end();
  }

  /** Answers with the sidecar's own error (a JSON-RPC one, with `jsonRpcCode`, when the body was a request). */
  refuse(
    spec: SidecarErrorSpec,
    text: string,
    options: { readonly close?: boolean; readonly retryAfterMs?: number } = {},
    jsonRpcCode?: number,
  ): void {
    this.errorCode = spec.code;
    const res: ServerResponse = this.request.res;
    if (jsonRpcCode !== undefined && this.message?.hasRequest) {
      // The SDK's own shape for an unknown session, so clients recognise it and re-initialize.
      const body = JSON.stringify({
        jsonrpc: "2.0",
        id: this.message.ids[0] ?? null,
        error: { code: jsonRpcCode, message: text, data: { code: spec.code, status: spec.status } },
      });
      res.writeHead(spec.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    writeSidecarError(res, spec, text, { ...options, message: this.message });
  }

  cut(): void {
    const { res } = this.request;
    if (this.#waitingForStream && !this.#finished) {
      this.#outcome = "cut";
      this.#finish();
      return;
    }
    if (res.destroyed || res.writableFinished) return;
    this.#outcome = "cut";
    res.destroy();
  }

  describe(): CutExchange {
    return describeAdmitted(this.request, this.message, this.kind);
  }

  #summary() {
    const { res } = this.request;
    const firstId = this.message?.ids[0];
    const session = this.session;
    return summarize(this.request, {
      kind: this.kind,
      outcome: this.#outcome ?? "completed",
      status: res.headersSent ? res.statusCode : 0,
      message: this.message,
      readAnswer: () => {
        if (this.#waitingForStream) return this.#streamAnswer;
        return firstId === undefined || firstId === null ? undefined : session?.answerTo(firstId);
      },
      errorCode: this.errorCode,
    });
  }
}
