// Where one request of a routed deployment goes: the pure decision of session routing. The shell
// (routing-upstream.ts) opens the token, then acts on the plan.

import type { SessionContinuity } from "../../config/routing-options.ts";
import { headerValue } from "../../http/headers.ts";
import { SESSION_MOVED, SESSION_MOVED_HEADER } from "../../sessions/hop.ts";
import type { PeerGuard } from "../../sessions/peers.ts";
import type { OpenedToken, SessionClaims } from "../../sessions/session-token.ts";

/** This sidecar as tokens name it. */
export interface SelfIdentity {
  readonly url: string;
  readonly instance: string;
}

/** Why a token's session cannot be served as it is: the metrics' reasons. */
export type RefusalReason =
  | "malformed"
  | "tampered"
  | "unknown_key"
  | "outside_peer_cidrs"
  | "not_replayable"
  | "continuity_off";

/** Why a session is re-created on this task. */
export type ReplayReason =
  /** Its token names this address but another (earlier) instance: the owner was replaced. */
  | "owner_replaced"
  /** The owner answered a forward with 421 moved: it drains, or is not the owner any more. */
  | "owner_moved"
  | "owner_unreachable"
  /** The connection to the owner broke before any of its answer (it was stopping). */
  | "owner_connection_lost"
  /** The owner answered 404: its upstream no longer has the session. */
  | "owner_lost_session";

export type RoutePlan =
  /** No session: served here; a session the upstream creates gets a token naming this task. */
  | { readonly kind: "new" }
  | { readonly kind: "local"; readonly claims: SessionClaims }
  | { readonly kind: "peer"; readonly origin: string; readonly claims: SessionClaims }
  | { readonly kind: "replay"; readonly claims: SessionClaims; readonly reason: ReplayReason }
  | { readonly kind: "not_found"; readonly reason: RefusalReason }
  /** A peer forwarded it, and this task cannot serve it: the peer continues the session itself. */
  | { readonly kind: "moved" };

export interface PlanInput {
  /** The opened Mcp-Session-Id, or undefined when the request has none. */
  readonly token: OpenedToken | undefined;
  /** Another sidecar forwarded the request (the hop header): it is never forwarded again. */
  readonly forwarded: boolean;
  readonly self: SelfIdentity;
  readonly guard: PeerGuard;
  readonly continuity: SessionContinuity;
}

export function planRoute(input: PlanInput): RoutePlan {
  const { token, self } = input;
  if (token === undefined) return { kind: "new" };
  if (!token.ok) return { kind: "not_found", reason: token.reason };
  const claims = token.claims;
  if (claims.instance === self.instance) return { kind: "local", claims };
  if (input.forwarded) return { kind: "moved" };
  if (claims.owner === self.url) return continueHere(input, claims, "owner_replaced");
  const origin = input.guard.originOf(claims.owner);
  if (origin === undefined) return { kind: "not_found", reason: "outside_peer_cidrs" };
  return { kind: "peer", origin, claims };
}

/** The owner is gone: the session goes on here when continuity allows and it can be re-created. */
export function continueHere(
  input: Pick<PlanInput, "continuity">,
  claims: SessionClaims,
  reason: ReplayReason,
): RoutePlan {
  if (input.continuity === "off") return { kind: "not_found", reason: "continuity_off" };
  if (claims.initialize === undefined) return { kind: "not_found", reason: "not_replayable" };
  return { kind: "replay", claims, reason };
}

/** Why a forward's answer (or failure) means the owner is gone, or undefined: relay it. */
export function goneReason(
  answer: { readonly status: number; readonly headers: readonly string[] } | "unreachable" | "lost",
  method: string | undefined,
): ReplayReason | undefined {
  if (answer === "unreachable") return "owner_unreachable";
  // The connection to the owner broke before any of its answer: a request written as the stopping
  // owner closed its pooled connection (the owner never read it), or the owner's process died. A
  // call the owner cuts at its drain timeout is answered (MCP_SIDECAR_CALL_CUT), never reset. So
  // a call is served again here unless the owner died while running it; then it runs twice, the
  // one cost of continuity (docs/scaling.md).
  if (answer === "lost") return "owner_connection_lost";
  if (answer.status === 421 && headerValue(answer.headers, SESSION_MOVED_HEADER) === SESSION_MOVED)
    return "owner_moved";
  // A DELETE's 404 is the answer itself: the session is gone, which is what the client asked.
  if (isSessionNotFound(answer) && method !== "DELETE") return "owner_lost_session";
  return undefined;
}

/**
 * A 404 that may be about the session: MCP servers answer an unknown session with a JSON-RPC
 * error (the SDK's "Session not found", Streamable HTTP §Session Management; older SDK releases
 * send it with no Content-Type). A 404 page for a wrong path is HTML or plain text, and
 * re-creating the session would not help it.
 */
export function isSessionNotFound(answer: {
  readonly status: number;
  readonly headers: readonly string[];
}): boolean {
  if (answer.status !== 404) return false;
  const type = (headerValue(answer.headers, "content-type") ?? "").toLowerCase();
  return !type.startsWith("text/html") && !type.startsWith("text/plain");
}
