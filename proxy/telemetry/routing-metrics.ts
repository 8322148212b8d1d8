// Session routing's metrics: where each session request went (served here, forwarded to its owner,
// re-created here, refused) and why, how long forwards take, and the sessions this task owns.
// Registered only with --session-routing.

import { Counter, Gauge, Histogram, type Registry } from "../deps.ts";

export type RoutedAs = "local" | "forwarded" | "replayed" | "refused";

export class RoutingMetrics {
  readonly requests: Counter<"route" | "reason">;
  readonly forwardSeconds: Histogram;
  readonly sessionsOwned: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: "mcp_sidecar_session_requests_total",
      help: "Requests of MCP sessions by where they went: local (this task owns the session, or creates it: reason new), forwarded (to the owning task's sidecar), replayed (the owner is gone: the session was re-created here; reason: owner_moved, owner_unreachable, owner_replaced, owner_lost_session), refused (answered 404 or 421; reason: malformed, tampered, unknown_key, outside_peer_cidrs, not_replayable, continuity_off, moved).",
      labelNames: ["route", "reason"],
      registers,
    });
    this.forwardSeconds = new Histogram({
      name: "mcp_sidecar_session_forward_seconds",
      help: "From taking a request to the owning task's sidecar starting its response, for forwarded requests.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.sessionsOwned = new Gauge({
      name: "mcp_sidecar_sessions_owned",
      help: "Sessions whose token names this task: created or re-created here, less those DELETEd (sessions the server expires on its own are not seen, so this is an upper bound).",
      registers,
    });
  }

  routed(route: RoutedAs, reason: string): void {
    this.requests.inc({ route, reason });
  }
}
