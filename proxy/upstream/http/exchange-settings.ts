// What an exchange is given by its upstream, how it names the upstream's failures to the client,
// and the error it aborts its own upstream request with (the client left, the drain, a hand-back).

import type { IncomingMessage } from "node:http";
import type { Dispatcher } from "undici";
import { SIDECAR_ERRORS, type SidecarErrorSpec } from "../../errors.ts";
import type { TransportFailure } from "../../http/transport-errors.ts";
import type { LegacySessions } from "../../protocol/legacy-sse.ts";
import { FORWARDED_BY_HEADER } from "../../sessions/hop.ts";
import type { UpstreamErrorKind } from "../../telemetry/exchange-summary.ts";

export interface HttpExchangeSettings {
  readonly dispatcher: Dispatcher;
  readonly sseKeepaliveMs: number;
  readonly maxBodyBytes: number;
  readonly upstreamHeadersTimeoutMs: number;
  /** The upstream refused the connection: readiness should know before its next probe. */
  readonly onRefused: () => void;
  /** The legacy HTTP+SSE sessions open through this upstream (drained by call). */
  readonly legacy: LegacySessions;
  /** Session routing is on: requests other tasks' sidecars forward here get their care (isPeerForward). */
  readonly peerForwards?: boolean;
}

/** What the client is told when the upstream fails before answering, by how it failed. */
export const UNREACHABLE: readonly [SidecarErrorSpec, UpstreamErrorKind] = [
  SIDECAR_ERRORS.upstreamUnreachable,
  "unreachable",
];
export const UPSTREAM_FAILURES: Partial<
  Record<TransportFailure, readonly [SidecarErrorSpec, UpstreamErrorKind]>
> = {
  connect_timeout: [SIDECAR_ERRORS.upstreamConnectTimeout, "connect_timeout"],
  headers_timeout: [SIDECAR_ERRORS.upstreamHeadersTimeout, "headers_timeout"],
};

export class ExchangeAbortedError extends Error {
  override name = "ExchangeAbortedError";
}

/** Why a body is refused before any of it is read: its Content-Length is over --max-body-size. */
export function declaredTooLarge(length: string | undefined, maxBodyBytes: number): string | undefined {
  if (length === undefined || Number(length) <= maxBodyBytes) return undefined;
  return `request body of ${length} bytes exceeds --max-body-size (${maxBodyBytes} bytes)`;
}

/**
 * With session routing, another task's sidecar forwarded this request. The peer takes a reset
 * before any byte of an answer for a request never received here, and serves it again elsewhere
 * (routing/route-plan.ts goneReason), so such a request's answer starts on the wire with its head
 * (flushed at once), and a call cut before that is answered (MCP_SIDECAR_CALL_CUT), never reset.
 */
export function isPeerForward(settings: HttpExchangeSettings, req: IncomingMessage): boolean {
  return settings.peerForwards === true && req.headers[FORWARDED_BY_HEADER] !== undefined;
}

export const CALL_CUT = "the session's owner cut the call at its drain timeout";
