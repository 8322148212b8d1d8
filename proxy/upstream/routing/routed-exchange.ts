// One request of a routed deployment, as the drain sees it: the exchange that serves it now (to the
// owner, then maybe to the local upstream after a hand-back), or nothing yet while a key refresh or a
// session replay is under way. While nothing serves it, this reports it when it closes, so it never
// stays in flight; once an exchange serves it, that exchange reports.

import { SIDECAR_ERRORS, type SidecarErrorSpec } from "../../errors.ts";
import { writeSidecarError } from "../../http/answers.ts";
import { ANSWER_BODY_WAIT_MS, readBodyPrefix, readWhole } from "../../http/body-prefix.ts";
import { describeJsonRpc } from "../../protocol/jsonrpc.ts";
import { classifyExchange, type ExchangeKind, type ExchangeOutcome } from "../../protocol/outcome.ts";
import { CAPTURE_LIMIT_BYTES } from "../../protocol/response-capture.ts";
import type { CutExchange } from "../../telemetry/telemetry.ts";
import {
  type AdmittedRequest,
  describeAdmitted,
  type ExchangeObserver,
  type InFlightExchange,
  summarize,
} from "../upstream.ts";

export class RoutedExchange implements InFlightExchange {
  readonly kind: ExchangeKind;
  readonly #request: AdmittedRequest;
  readonly #observer: ExchangeObserver;
  #inner: InFlightExchange | undefined;
  /** The drain asked endless streams to end while nothing served this one yet. */
  #endlessRetryMs: number | undefined;
  #outcome: ExchangeOutcome | undefined;
  #status = 0;
  #errorCode: string | undefined;

  constructor(request: AdmittedRequest, observer: ExchangeObserver) {
    this.#request = request;
    this.#observer = observer;
    this.kind = classifyExchange(request.req.method ?? "GET", request.head);
    request.res.once("close", this.#onClose);
  }

  /** The client is gone, or the request was answered: nothing more to serve. */
  get over(): boolean {
    const res = this.#request.res;
    return res.destroyed || res.writableEnded;
  }

  /** `inner` serves the request from now on (and reports it). */
  attach(inner: InFlightExchange): void {
    this.#request.res.off("close", this.#onClose);
    this.#inner = inner;
    if (this.#endlessRetryMs !== undefined) inner.closeEndless(this.#endlessRetryMs);
  }

  /** The exchange that served it handed it back: this reports it again until another is attached. */
  detach(): void {
    this.#inner = undefined;
    this.#request.res.once("close", this.#onClose);
  }

  /** Answers with the sidecar's own error (quoting the request's JSON-RPC id). */
  answer(
    spec: SidecarErrorSpec,
    text: string,
    options: {
      readonly headers?: Record<string, string>;
      readonly close?: boolean;
      readonly outcome?: ExchangeOutcome;
    } = {},
  ): void {
    const { req, res } = this.#request;
    const write = (body: Buffer | undefined) => {
      const options_ = { ...options, message: body === undefined ? undefined : describeJsonRpc(body) };
      const retry = spec.status === 503 ? { retryAfterMs: 1000 } : {};
      if (writeSidecarError(res, spec, text, { ...options_, ...retry })) {
        this.#status = spec.status;
        this.#errorCode = spec.code;
        this.#outcome = options.outcome ?? "completed";
      }
    };
    if (req.method === "POST" && !req.readableEnded)
      void readBodyPrefix(req, CAPTURE_LIMIT_BYTES, ANSWER_BODY_WAIT_MS).then(write);
    else write(undefined);
  }

  /** Reads the whole body (bounded), then `then`; a 413 when it is larger, a cut when it breaks. */
  readWhole(maxBodyBytes: number, then: (body: Buffer) => void): void {
    readWhole(this.#request.req, maxBodyBytes).then(
      (body) => {
        if (this.over) return;
        if (body !== undefined) then(body);
        else
          this.answer(
            SIDECAR_ERRORS.bodyTooLarge,
            `request body exceeds --max-body-size (${maxBodyBytes} bytes)`,
            { close: true, outcome: "body_too_large" },
          );
      },
      () => this.cut(),
    );
  }

  /** Answers without a body: a DELETE of a session that is gone anyway. */
  answerEmpty(status: number): void {
    const res = this.#request.res;
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status).end();
    this.#status = status;
    this.#outcome = "completed";
  }

  closeEndless(retryMs: number): void {
    if (this.#inner !== undefined) this.#inner.closeEndless(retryMs);
    else if (this.kind === "endless") this.#endlessRetryMs = retryMs;
  }

  cut(): void {
    if (this.#inner !== undefined) {
      this.#inner.cut();
      return;
    }
    this.#outcome = "cut";
    this.#request.res.destroy();
  }

  describe(): CutExchange {
    return this.#inner?.describe() ?? describeAdmitted(this.#request, undefined, this.kind);
  }

  #onClose = (): void => {
    this.#observer.exchangeFinished(
      this.#request.res,
      summarize(this.#request, {
        kind: this.kind,
        outcome: this.#outcome ?? "client_closed",
        status: this.#status,
        message: undefined,
        readAnswer: () => undefined,
        errorCode: this.#errorCode,
      }),
    );
  };
}
