// One immutable record per finished exchange: what telemetry (metrics and the access log) knows of
// it. Whoever ended the exchange (an upstream's transport, or the front door for an answer it gave
// itself) builds it once; nothing reads an exchange's internals afterwards.

import type { CallOutcome, ExchangeKind, ExchangeOutcome, StreamKind } from "../protocol/outcome.ts";

export type UpstreamErrorKind = "unreachable" | "connect_timeout" | "headers_timeout" | "reset_mid_response";

export interface ExchangeSummary {
  /** The request id (the client's X-Request-Id when usable, else a new UUID). */
  readonly id: string;
  /** The HTTP method and request target (the target's query is never logged). */
  readonly method: string;
  readonly target: string;
  /** Forwarded, or refused by the front door (unauthorized). */
  readonly route: "forward" | "rejected";
  /** The status sent to the client; 0 when no answer was begun. */
  readonly status: number;
  readonly durationMs: number;
  readonly outcome: ExchangeOutcome;
  readonly kind: ExchangeKind;
  readonly mcpMethod: string | undefined;
  readonly mcpName: string | undefined;
  /** A JSON-RPC request rather than a notification: only requests count as MCP calls. */
  readonly isRequest: boolean;
  /** How the MCP call ended, when it carried an MCP method. */
  readonly callOutcome: CallOutcome | undefined;
  /** The client's Mcp-Session-Id, hashed before it is logged. */
  readonly sessionId: string | undefined;
  /** When the upstream began its answer, from the start of the exchange. */
  readonly upstreamMs: number | undefined;
  /** The sidecar error code, when the sidecar answered with its own error. */
  readonly errorCode: string | undefined;
  readonly keepalives: number;
  /** Set when the answer was an event stream. */
  readonly streamKind: StreamKind | undefined;
  readonly upstreamErrorKind: UpstreamErrorKind | undefined;
}
