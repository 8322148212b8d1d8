// The routing upstream: with --session-routing, every request goes through here. It gives clients
// sealed session tokens instead of the upstream's session ids, serves a token's requests on the
// local upstream when this task owns the session, forwards them to the owner's sidecar when another
// task does, and re-creates the session here when the owner is gone (--session-continuity replay).
// The decisions are route-plan.ts; this is the shell that acts on them.
//
// What the client sees is never an upstream id, and what the upstream sees is never a token: the
// swap happens on the request's Mcp-Session-Id before it goes to the local upstream, and on the
// response's before it goes to the client (ExchangeRoute.clientSessionId).

import { randomUUID } from "node:crypto";
import type { SessionContinuity } from "../../config/routing-options.ts";
import { SIDECAR_ERRORS } from "../../errors.ts";
import { type ForwardedFor, headerValue, setHeader, type UpstreamRequestHead } from "../../http/headers.ts";
import type { CheckResult } from "../../lifecycle/readiness.ts";
import { FORWARDED_BY_HEADER, SESSION_MOVED, SESSION_MOVED_HEADER } from "../../sessions/hop.ts";
import type { PeerGuard } from "../../sessions/peers.ts";
import {
  initializeParamsOf,
  openSessionToken,
  type SessionClaims,
  type SessionKey,
} from "../../sessions/session-token.ts";
import type { Logger } from "../../telemetry/logger.ts";
import type { RoutedAs, RoutingMetrics } from "../../telemetry/routing-metrics.ts";
import { HttpExchange } from "../http/exchange.ts";
import type { ExchangeRoute } from "../http/exchange-route.ts";
import type { HttpUpstream } from "../http/http-upstream.ts";
import {
  type AdmittedRequest,
  type ExchangeObserver,
  type InFlightExchange,
  observing,
  type Upstream,
} from "../upstream.ts";
import type { PeerPools } from "./peer-pools.ts";
import { ReplayedSessions } from "./replayed-sessions.ts";
import {
  continueHere,
  goneReason,
  isSessionNotFound,
  planRoute,
  type ReplayReason,
  type RoutePlan,
  type SelfIdentity,
} from "./route-plan.ts";
import { RoutedExchange } from "./routed-exchange.ts";
import { TokenMinter } from "./token-minter.ts";

export interface RoutingOptions {
  /** The session token keys: [0] seals, all open (secrets/runtime.ts). */
  readonly keys: () => readonly SessionKey[];
  /** Waits (bounded) for an on-demand refresh; true when a key with this id is then known. */
  readonly refreshKeys: (keyId: string) => Promise<boolean>;
  readonly guard: PeerGuard;
  readonly continuity: SessionContinuity;
  readonly peers: PeerPools;
  readonly metrics: RoutingMetrics;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
}

/** One request being routed: what every step needs. */
interface Routing {
  readonly request: AdmittedRequest;
  readonly routed: RoutedExchange;
  readonly observer: ExchangeObserver;
  readonly token: string | undefined;
}

export class RoutingUpstream implements Upstream {
  readonly target: string;
  /** Names this process in its tokens: a later sidecar at the same address is another owner. */
  readonly instance = randomUUID();
  readonly #local: HttpUpstream;
  readonly #options: RoutingOptions;
  readonly #replayed = new ReplayedSessions();
  readonly #minter: TokenMinter;
  #self: SelfIdentity | undefined;

  constructor(local: HttpUpstream, options: RoutingOptions) {
    this.#local = local;
    this.#options = options;
    this.target = `${local.target} (session routing)`;
    this.#minter = new TokenMinter(options.keys, options.metrics, () => this.#self as SelfIdentity);
  }

  /** Where other tasks reach this sidecar; known once it listens. */
  advertise(url: string): void {
    this.#self = { url, instance: this.instance };
  }

  requestHead(raw: readonly string[], forwarded: ForwardedFor): UpstreamRequestHead {
    return this.#local.requestHead(raw, forwarded);
  }

  forward(request: AdmittedRequest, observer: ExchangeObserver): InFlightExchange {
    const token = request.head.sessionId;
    const routing: Routing = { request, observer, token, routed: new RoutedExchange(request, observer) };
    const self = this.#self;
    const keys = this.#options.keys();
    if (self === undefined || keys.length === 0) {
      this.#count("refused", "keys_not_loaded");
      routing.routed.answer(
        SIDECAR_ERRORS.sessionKeysUnavailable,
        "session routing is not ready: the --session-secret is not loaded yet",
      );
      return routing.routed;
    }
    const replayed = token === undefined ? undefined : this.#replayed.get(token);
    if (replayed !== undefined) {
      this.#count("local", "replayed_session");
      this.#serveLocal(routing, replayed.claims, replayed.token, undefined);
      return routing.routed;
    }
    const opened = token === undefined ? undefined : openSessionToken(keys, token);
    if (opened?.ok === false && opened.reason === "unknown_key" && token !== undefined) {
      // Sealed with a key another task has polled and this one not yet: worth one bounded refresh.
      const decide = (known: boolean) => {
        if (routing.routed.over) return;
        this.#act(routing, self, known ? openSessionToken(this.#options.keys(), token) : opened);
      };
      void this.#options.refreshKeys(opened.keyId).then(decide, () => decide(false));
      return routing.routed;
    }
    this.#act(routing, self, opened);
    return routing.routed;
  }

  check(): Promise<CheckResult> {
    return this.#local.check();
  }

  close(): Promise<void> {
    this.#options.peers.close();
    return this.#local.close();
  }

  // ---- acting on the plan ----

  #act(routing: Routing, self: SelfIdentity, opened: ReturnType<typeof openSessionToken> | undefined): void {
    const forwarded = routing.request.req.headers[FORWARDED_BY_HEADER] !== undefined;
    const plan = planRoute({
      token: opened,
      forwarded,
      self,
      guard: this.#options.guard,
      continuity: this.#options.continuity,
    });
    const key = opened?.ok ? opened.key : undefined;
    this.#follow(routing, plan, key, undefined);
  }

  #follow(
    routing: Routing,
    plan: RoutePlan,
    key: SessionKey | undefined,
    body: Buffer | null | undefined,
  ): void {
    switch (plan.kind) {
      case "new":
        this.#count("local", "new");
        this.#serveLocal(routing, undefined, undefined, body);
        return;
      case "local": {
        this.#count("local", "owned");
        const keys = this.#options.keys();
        // A token sealed with a key that is no longer current is re-sealed: the client adopts the
        // new one (the SDK takes Mcp-Session-Id from any response), so a second rotation loses nothing.
        const clientToken =
          key !== undefined && keys[0] !== undefined && !key.id.equals(keys[0].id)
            ? this.#minter.reseal(plan.claims)
            : (routing.token as string);
        this.#serveLocal(routing, plan.claims, clientToken, body, { continuity: this.#options.continuity });
        return;
      }
      case "peer":
        if (
          routing.request.req.method !== "POST" ||
          this.#options.continuity === "off" ||
          plan.claims.initialize === undefined
        )
          this.#forwardToOwner(routing, plan.origin, plan.claims, undefined);
        // Read whole first: if the owner turns out to be gone, the request is served again here.
        else
          routing.routed.readWhole(this.#options.maxBodyBytes, (read) =>
            this.#forwardToOwner(routing, plan.origin, plan.claims, read),
          );
        return;
      case "replay":
        this.#ownerGone(routing, plan.claims, plan.reason, body ?? "unread");
        return;
      case "not_found":
        this.#count("refused", plan.reason);
        routing.routed.answer(SIDECAR_ERRORS.sessionNotFound, "Session not found");
        return;
      case "moved":
        this.#count("refused", "moved");
        routing.routed.answer(SIDECAR_ERRORS.sessionMoved, "this task does not own the session", {
          headers: { [SESSION_MOVED_HEADER]: SESSION_MOVED },
        });
        return;
    }
  }

  /**
   * Serves on the local upstream: `claims` set, as that session (the request's Mcp-Session-Id
   * swapped for the upstream's); unset, as a request without one, whose new session gets a token.
   */
  #serveLocal(
    routing: Routing,
    claims: SessionClaims | undefined,
    clientToken: string | undefined,
    body: Buffer | null | undefined,
    /** Set on the first try of a session owned here: a 404 from the upstream is then replayed. */
    lost?: { readonly continuity: SessionContinuity },
  ): void {
    const { request, routed } = routing;
    const headers = [...request.headers];
    if (claims !== undefined) setHeader(headers, "mcp-session-id", claims.upstreamSession);
    const route: ExchangeRoute = {
      ...(body === undefined ? {} : { body }),
      clientSessionId: (upstream, requestBody) => {
        if (upstream === undefined || upstream === claims?.upstreamSession) return clientToken;
        return this.#minter.mint(upstream, initializeParamsOf(requestBody) ?? claims?.initialize).token;
      },
      ...(lost === undefined
        ? {}
        : {
            // The upstream lost the session (it restarted, or expired it): continue it here.
            handBack: (answer, requestBody) => {
              if (typeof answer === "string" || !isSessionNotFound(answer) || request.req.method === "DELETE")
                return false;
              // Only a request that can be sent again (its body kept whole), and a session that can be.
              if (lost.continuity === "off" || claims?.initialize === undefined || requestBody === undefined)
                return false;
              routed.detach();
              this.#ownerGone(routing, claims, "owner_lost_session", requestBody);
              return true;
            },
          }),
    };
    const isDelete = request.req.method === "DELETE";
    const observer = isDelete
      ? observing(routing.observer, (summary) => {
          if (summary.status < 200 || summary.status >= 300) return;
          this.#options.metrics.sessionsOwned.dec();
          if (routing.token !== undefined) this.#replayed.forget(routing.token);
        })
      : routing.observer;
    routed.attach(this.#local.forward({ ...request, headers }, observer, route));
  }

  #forwardToOwner(routing: Routing, origin: string, claims: SessionClaims, body: Buffer | undefined): void {
    const { request, routed } = routing;
    const headers = [...request.headers];
    // An http:// origin of an IP address (PeerGuard.originOf): its host is the rest.
    setHeader(headers, "host", origin.slice("http://".length));
    // The owner checks the client's key again: it travels on, as the client sent it.
    if (request.head.authorization !== undefined)
      setHeader(headers, "authorization", request.head.authorization);
    setHeader(headers, FORWARDED_BY_HEADER, this.instance);
    const observer = observing(routing.observer, (summary) => {
      this.#count("forwarded", "owner");
      if (summary.upstreamMs !== undefined)
        this.#options.metrics.forwardSeconds.observe(summary.upstreamMs / 1000);
    });
    const exchange = new HttpExchange(
      { ...request, headers },
      this.#options.peers.settingsFor(origin),
      observer,
      {
        ...(body === undefined ? {} : { body }),
        handBack: (answer, kept) => {
          const reason = goneReason(answer, request.req.method);
          if (reason === undefined) return false;
          routed.detach();
          this.#ownerGone(routing, claims, reason, kept);
          return true;
        },
      },
    );
    routed.attach(exchange);
    exchange.start();
  }

  /**
   * The owner is gone (or was replaced): continue the session here, if continuity allows. `body`:
   * the request's, kept whole (null: none); "unread" when nothing has read the request yet;
   * undefined when it was sent on without being kept (it cannot be sent again).
   */
  #ownerGone(
    routing: Routing,
    claims: SessionClaims,
    reason: ReplayReason,
    body: Buffer | null | "unread" | undefined,
  ): void {
    const { request, routed } = routing;
    if (request.req.method === "DELETE") {
      // Ending a session whose owner is gone: it is over either way.
      this.#count("local", "delete_of_gone");
      routed.answerEmpty(204);
      return;
    }
    const plan = continueHere({ continuity: this.#options.continuity }, claims, reason);
    if (plan.kind !== "replay") {
      this.#follow(routing, plan, undefined, body === "unread" ? undefined : body);
      return;
    }
    if (body === "unread") {
      if (request.req.method === "POST")
        routed.readWhole(this.#options.maxBodyBytes, (read) =>
          this.#ownerGone(routing, claims, reason, read),
        );
      else this.#ownerGone(routing, claims, reason, null);
      return;
    }
    if (body === undefined) {
      routed.answer(SIDECAR_ERRORS.sessionNotContinued, "the request body was not kept to serve it again");
      return;
    }
    const token = routing.token as string;
    const path = (request.req.url ?? "/").split("?")[0] as string;
    this.#replayed
      .getOrCreate(token, async () => {
        // A server that checks the client's own credentials gets them on the replay too.
        const authorization = headerValue(request.headers, "authorization");
        const opened = await this.#local.openSession(
          path,
          claims.initialize as Record<string, unknown>,
          authorization === undefined ? [] : ["authorization", authorization],
        );
        this.#options.logger.info({ reason, owner: claims.owner }, "session continued on this task");
        return this.#minter.mint(opened.sessionId, claims.initialize);
      })
      .then(
        (session) => {
          if (routed.over) return;
          this.#count("replayed", reason);
          // A stream's Last-Event-ID names an event of the old session: the new one starts afresh.
          if (request.req.method === "GET") setHeader(request.headers, "last-event-id", undefined);
          this.#serveLocal(routing, session.claims, session.token, body);
        },
        (error: unknown) => {
          this.#count("refused", "replay_failed");
          routed.answer(
            SIDECAR_ERRORS.sessionNotContinued,
            `the session's owner is gone and re-creating it here failed: ${(error as Error).message}`,
          );
        },
      );
  }

  #count(route: RoutedAs, reason: string): void {
    this.#options.metrics.routed(route, reason);
  }
}
