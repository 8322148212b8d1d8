// Seals the tokens of the sessions this task owns: new ones (an initialize answered here, a session
// re-created here) and old ones re-sealed with the current key. Counts the sessions it issues.

import {
  MAX_TOKEN_CHARS,
  type SessionClaims,
  type SessionKey,
  sealSessionToken,
} from "../../sessions/session-token.ts";
import type { RoutingMetrics } from "../../telemetry/routing-metrics.ts";
import type { SelfIdentity } from "./route-plan.ts";

export class TokenMinter {
  readonly #keys: () => readonly SessionKey[];
  readonly #metrics: RoutingMetrics;
  readonly #self: () => SelfIdentity;

  constructor(keys: () => readonly SessionKey[], metrics: RoutingMetrics, self: () => SelfIdentity) {
    this.#keys = keys;
    this.#metrics = metrics;
    this.#self = self;
  }

  /** A new session's token, naming this task as its owner. */
  mint(
    upstreamSession: string,
    initialize: Record<string, unknown> | undefined,
  ): { readonly token: string; readonly claims: SessionClaims } {
    const self = this.#self();
    this.#metrics.sessionsOwned.inc();
    const claims = {
      owner: self.url,
      instance: self.instance,
      upstreamSession,
      initialize,
      issuedAt: Date.now(),
    };
    const token = this.reseal(claims);
    if (token.length <= MAX_TOKEN_CHARS) return { token, claims };
    // A very long upstream id: the token goes without the initialize (routed, not replayable).
    const bare = { ...claims, initialize: undefined };
    return { token: this.reseal(bare), claims: bare };
  }

  /** The claims sealed with the current key. */
  reseal(claims: SessionClaims): string {
    return sealSessionToken(this.#keys()[0] as SessionKey, claims);
  }
}
