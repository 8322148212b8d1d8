// The API key check at the front door (--auth-secret). A key that matches a known version passes at
// once; no key, or a malformed header, gets 401 at once; a key that matches nothing known may be one
// the agent already serves but the sidecar has not polled yet, so the request waits for an
// on-demand refresh (bounded in time and in waiters: secrets/on-demand.ts) and is decided then.

import { SIDECAR_ERRORS } from "../errors.ts";
import { writeSidecarError } from "../http/answers.ts";
import { ANSWER_BODY_WAIT_MS, readBodyPrefix } from "../http/body-prefix.ts";
import { describeJsonRpc } from "../protocol/jsonrpc.ts";
import { classifyExchange, type ExchangeKind, type ExchangeOutcome } from "../protocol/outcome.ts";
import { CAPTURE_LIMIT_BYTES } from "../protocol/response-capture.ts";
import type { AuthVerdict } from "../secrets/runtime.ts";
import type { ExchangeSummary } from "../telemetry/exchange-summary.ts";
import type { CutExchange } from "../telemetry/telemetry.ts";
import {
  type AdmittedRequest,
  describeAdmitted,
  type InFlightExchange,
  summarize,
} from "../upstream/upstream.ts";
import type { InFlight } from "./in-flight.ts";

/** What the front door needs of the secrets to check a key (secrets/runtime.ts provides it). */
export interface ApiKeyCheck {
  checkAuthorization(header: string | undefined): AuthVerdict;
  /** Waits (bounded) for the agent's latest versions; true when `header`'s key is then accepted. */
  refreshAuthOnDemand(header: string | undefined): Promise<boolean>;
}

export interface AuthorizeHooks {
  readonly inFlight: InFlight;
  /** The key is good: hand the request to the upstream. */
  allowed(): void;
  /** An answer the front door gave itself is closed: report it. */
  finished(summary: ExchangeSummary): void;
}

export function authorize(keys: ApiKeyCheck, request: AdmittedRequest, hooks: AuthorizeHooks): void {
  const verdict = keys.checkAuthorization(request.head.authorization);
  if (verdict === "ok") hooks.allowed();
  else if (verdict === "missing") refuse(request, false, hooks);
  else new AwaitingKey(keys, request, hooks).start();
}

const MISSING_KEY = "an API key is required: Authorization: Bearer <key>";
const UNKNOWN_KEY = "the API key matches no current or previous version";

/**
 * 401, with WWW-Authenticate as RFC 6750 §3 has it: no error code when no key was sent,
 * `invalid_token` and a description when one was. A JSON-RPC request gets a JSON-RPC error quoting
 * its id (the body is read, bounded, for it), so an MCP client shows why instead of failing to parse.
 */
function refuse(request: AdmittedRequest, presented: boolean, hooks: AuthorizeHooks): void {
  const { req, res } = request;
  const spec = SIDECAR_ERRORS.unauthorized;
  let answered = false;
  hooks.inFlight.set(res, null);
  res.once("close", () =>
    hooks.finished(
      ownSummary(request, "unauthorized", answered ? spec.status : 0, answered ? spec.code : undefined),
    ),
  );
  const text = presented ? UNKNOWN_KEY : MISSING_KEY;
  const challenge = presented
    ? `Bearer realm="mcp-sidecar", error="invalid_token", error_description="${UNKNOWN_KEY}"`
    : 'Bearer realm="mcp-sidecar"';
  const answer = (body: Buffer | undefined) => {
    answered = writeSidecarError(res, spec, text, {
      message: body === undefined ? undefined : describeJsonRpc(body),
      headers: { "www-authenticate": challenge },
    });
  };
  if (req.method === "POST") void readBodyPrefix(req, CAPTURE_LIMIT_BYTES, ANSWER_BODY_WAIT_MS).then(answer);
  else answer(undefined);
}

/** A request whose key matched nothing known, waiting for the on-demand refresh: in flight meanwhile. */
class AwaitingKey implements InFlightExchange {
  readonly kind: ExchangeKind;
  readonly #keys: ApiKeyCheck;
  readonly #request: AdmittedRequest;
  readonly #hooks: AuthorizeHooks;
  /** Set when the wait ended without a decision: the client left, or the drain answered. */
  #ended: ExchangeOutcome | undefined;
  #status = 0;
  #errorCode: string | undefined;

  constructor(keys: ApiKeyCheck, request: AdmittedRequest, hooks: AuthorizeHooks) {
    this.kind = classifyExchange(request.req.method ?? "GET", request.head);
    this.#keys = keys;
    this.#request = request;
    this.#hooks = hooks;
  }

  start(): void {
    this.#hooks.inFlight.set(this.#request.res, this);
    this.#request.res.once("close", this.#onClose);
    const decide = () => this.#decide();
    void this.#keys.refreshAuthOnDemand(this.#request.head.authorization).then(decide, decide);
  }

  #decide(): void {
    const { res, head } = this.#request;
    if (this.#ended !== undefined || res.destroyed) return;
    res.off("close", this.#onClose);
    if (this.#keys.checkAuthorization(head.authorization) === "ok") this.#hooks.allowed();
    else refuse(this.#request, true, this.#hooks);
  }

  #onClose = (): void => {
    this.#ended ??= "client_closed";
    this.#hooks.finished(ownSummary(this.#request, this.#ended, this.#status, this.#errorCode));
  };

  closeEndless(retryMs: number): void {
    if (this.kind !== "endless" || this.#ended !== undefined) return;
    this.#ended = "closed_by_drain";
    const spec = SIDECAR_ERRORS.draining;
    const answered = writeSidecarError(
      this.#request.res,
      spec,
      "sidecar is draining; retry on another instance",
      {
        close: true,
        retryAfterMs: this.#request.req.method === "GET" ? retryMs : undefined,
      },
    );
    if (answered) {
      this.#status = spec.status;
      this.#errorCode = spec.code;
    }
  }

  cut(): void {
    this.#ended = "cut";
    this.#request.res.destroy();
  }

  describe(): CutExchange {
    return describeAdmitted(this.#request, undefined, this.kind);
  }
}

/** The summary of a request the front door answered (or lost) before any upstream saw it. */
function ownSummary(
  request: AdmittedRequest,
  outcome: ExchangeOutcome,
  status: number,
  errorCode: string | undefined,
): ExchangeSummary {
  // The body was never read: only the 2026 headers can say what the request was.
  return summarize(request, {
    kind: classifyExchange(request.req.method ?? "GET", request.head),
    outcome,
    status,
    message: undefined,
    readAnswer: () => undefined,
    errorCode,
  });
}
