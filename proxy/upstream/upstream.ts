// What the front door needs of whatever serves the MCP requests it admits: an upstream. The front
// door authenticates, admits by drain state, names the request and hands it over; the upstream
// answers it and reports back. Implementations:
//
//   upstream/http/     an MCP server over HTTP in the same task (undici)
//   upstream/stdio/    a stdio MCP server run as supervised children, one per session
//   upstream/routing/  --session-routing: the local HTTP upstream, or the sidecar of the task that
//                      owns the request's session (forwarded over a keep-alive pool), per request

import type { IncomingMessage, ServerResponse } from "node:http";
import type { ForwardedFor, RequestHeadInfo, UpstreamRequestHead } from "../http/headers.ts";
import type { CheckResult } from "../lifecycle/readiness.ts";
import type { McpMessageInfo } from "../protocol/jsonrpc.ts";
import {
  type Answer,
  callOutcomeOf,
  type ExchangeKind,
  type ExchangeOutcome,
  mcpRequestOf,
  type StreamKind,
} from "../protocol/outcome.ts";
import type { ExchangeSummary, UpstreamErrorKind } from "../telemetry/exchange-summary.ts";
import type { CutExchange } from "../telemetry/telemetry.ts";

/** A request the front door admitted (authenticated, not refused by a drain), with its id. */
export interface AdmittedRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request id: logs, X-Request-Id upstream, error answers. */
  readonly id: string;
  readonly head: RequestHeadInfo;
  /** The request headers as the upstream should get them (from `requestHead`, plus the id and injected secrets). */
  readonly headers: string[];
  /** performance.now() when the front door took the request. */
  readonly startedAt: number;
}

/** An exchange in flight, as the drain handles it. */
export interface InFlightExchange {
  readonly kind: ExchangeKind;
  /**
   * Ends a stream that never ends by itself, cleanly (at an event boundary; with an SSE `retry:` of
   * `retryMs` for the 2025-era streams that reconnect). A call is left to end by itself.
   */
  closeEndless(retryMs: number): void;
  /** The drain timeout or a forced stop: end it now. */
  cut(): void;
  /** What the drain logs when it cuts it. */
  describe(): CutExchange;
}

/** What an upstream reports about the exchanges it runs. */
export interface ExchangeObserver {
  /** An event stream started (headers sent) / a keepalive comment was written on one. */
  streamOpened(kind: StreamKind): void;
  keepaliveSent(): void;
  /** Once per exchange, when its response is closed (finished or not). */
  exchangeFinished(res: ServerResponse, summary: ExchangeSummary): void;
}

export interface Upstream {
  /** Where requests go, for the start-up log line. */
  readonly target: string;
  /**
   * Reads the client's request head in one pass (it is on every request's path): the headers to
   * send on, as this upstream needs them, and what the sidecar acts on.
   */
  requestHead(raw: readonly string[], forwarded: ForwardedFor): UpstreamRequestHead;
  /** Serves an admitted request; the returned exchange is in flight until the observer hears it finished. */
  forward(request: AdmittedRequest, observer: ExchangeObserver): InFlightExchange;
  /** Whether it can serve now; resolves, never rejects (cached as the upstream sees fit). */
  check(): Promise<CheckResult>;
  /** Releases what it holds (connections, children) once nothing is in flight, or at a forced stop. */
  close(): Promise<void>;
}

/** What the drain logs of an admitted request it cuts (`message`: its body's, when known). */
export function describeAdmitted(
  request: AdmittedRequest,
  message: McpMessageInfo | undefined,
  kind: ExchangeKind,
): CutExchange {
  const { req, id, head, startedAt } = request;
  const mcp = mcpRequestOf(head, message);
  return {
    id,
    method: req.method ?? "GET",
    target: req.url ?? "/",
    mcpMethod: mcp.method,
    mcpName: mcp.name,
    ageMs: performance.now() - startedAt,
    kind,
  };
}

/** What whoever ended an exchange knows of it, beyond the request itself. */
export interface ExchangeFacts {
  readonly kind: ExchangeKind;
  readonly outcome: ExchangeOutcome;
  /** The status sent to the client; 0 when no answer was begun. */
  readonly status: number;
  /** The request body's JSON-RPC message, when it was read. */
  readonly message: McpMessageInfo | undefined;
  /** The JSON-RPC answer of the response, read only when the call's ending depends on it. */
  readonly readAnswer: () => Answer | undefined;
  readonly upstreamMs?: number | undefined;
  readonly errorCode?: string | undefined;
  readonly keepalives?: number;
  readonly streamKind?: StreamKind | undefined;
  readonly upstreamErrorKind?: UpstreamErrorKind | undefined;
}

/** The one summary of a finished exchange that telemetry gets. */
export function summarize(request: AdmittedRequest, facts: ExchangeFacts): ExchangeSummary {
  const { req, head, id, startedAt } = request;
  const mcp = mcpRequestOf(head, facts.message);
  return {
    id,
    method: req.method ?? "GET",
    target: req.url ?? "/",
    route: facts.outcome === "unauthorized" ? "rejected" : "forward",
    status: facts.status,
    durationMs: performance.now() - startedAt,
    outcome: facts.outcome,
    kind: facts.kind,
    mcpMethod: mcp.method,
    mcpName: mcp.name,
    isRequest: mcp.isRequest,
    callOutcome:
      mcp.method === undefined ? undefined : callOutcomeOf(facts.outcome, facts.status, facts.readAnswer),
    sessionId: head.sessionId,
    upstreamMs: facts.upstreamMs,
    errorCode: facts.errorCode,
    keepalives: facts.keepalives ?? 0,
    streamKind: facts.streamKind,
    upstreamErrorKind: facts.upstreamErrorKind,
  };
}

/** `observer`, with `finished` told first of the exchange's summary. */
export function observing(
  observer: ExchangeObserver,
  finished: (summary: ExchangeSummary) => void,
): ExchangeObserver {
  return {
    streamOpened: (kind) => observer.streamOpened(kind),
    keepaliveSent: () => observer.keepaliveSent(),
    exchangeFinished: (res: ServerResponse, summary: ExchangeSummary) => {
      finished(summary);
      observer.exchangeFinished(res, summary);
    },
  };
}
