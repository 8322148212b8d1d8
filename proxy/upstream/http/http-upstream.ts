// The HTTP upstream: an MCP server in the same task, reached over a keep-alive undici Pool. Its
// readiness is an MCP-level probe on a dispatcher of its own, cached so that health checks never
// load the server, and reset at once when a forwarded request finds the server refusing connections.

import type { SidecarConfig } from "../../config.ts";
import { Client, Pool } from "../../deps.ts";
import { type ForwardedFor, prepareUpstreamRequest, type UpstreamRequestHead } from "../../http/headers.ts";
import { CachedCheck, type CheckResult } from "../../lifecycle/readiness.ts";
import { LegacySessions } from "../../protocol/legacy-sse.ts";
import type { AdmittedRequest, ExchangeObserver, InFlightExchange, Upstream } from "../upstream.ts";
import { HttpExchange } from "./exchange.ts";
import type { ExchangeRoute } from "./exchange-route.ts";
import type { HttpExchangeSettings } from "./exchange-settings.ts";
import { probeUpstream } from "./probe.ts";
import { type OpenedSession, openUpstreamSession } from "./session-opener.ts";

export type HttpUpstreamConfig = { readonly upstream: URL } & Pick<
  SidecarConfig,
  | "upstreamConnections"
  | "upstreamConnectTimeoutMs"
  | "upstreamHeadersTimeoutMs"
  | "sseKeepaliveMs"
  | "maxBodyBytes"
  | "readyProbe"
  | "readyProbePath"
  | "readyTimeoutMs"
  | "readyCacheMs"
>;

export interface HttpUpstreamOptions {
  /**
   * Header pairs set on every upstream request, the readiness probe's included (injected secrets).
   * Read once per request: a rotation applies to the next request, never half-way through one.
   */
  readonly injectedHeaders?: () => readonly string[];
  /** Lower-case request header names never forwarded (the sidecar's own auth, injected names). */
  readonly dropHeaders?: ReadonlySet<string>;
  /** Every probe actually sent (not the cached answers), for metrics. */
  readonly onProbe?: (result: CheckResult) => void;
  /** Session routing is on: other tasks' sidecars forward requests here (exchange-settings.ts). */
  readonly peerForwards?: boolean;
}

export class HttpUpstream implements Upstream {
  readonly target: string;
  readonly #host: string;
  readonly #pool: Pool;
  readonly #probeClient: Client;
  readonly #check: CachedCheck;
  readonly #exchange: HttpExchangeSettings;
  readonly #injected: (() => readonly string[]) | undefined;
  readonly #drop: ReadonlySet<string> | undefined;

  constructor(config: HttpUpstreamConfig, options: HttpUpstreamOptions = {}) {
    this.target = config.upstream.origin;
    this.#host = config.upstream.host;
    this.#injected = options.injectedHeaders;
    this.#drop = options.dropHeaders;
    this.#pool = new Pool(config.upstream.origin, {
      connections: config.upstreamConnections === 0 ? null : config.upstreamConnections,
      pipelining: 1,
      connect: { timeout: config.upstreamConnectTimeoutMs },
      headersTimeout: config.upstreamHeadersTimeoutMs,
      bodyTimeout: 0,
    });
    // A dispatcher of its own, so a pool full of long streams does not fail readiness.
    this.#probeClient = new Client(config.upstream.origin, {
      pipelining: 1,
      connect: { timeout: config.readyTimeoutMs },
    });
    const injected = options.injectedHeaders;
    this.#check = new CachedCheck(async () => {
      const result = await probeUpstream({
        kind: config.readyProbe,
        path: config.readyProbePath,
        timeoutMs: config.readyTimeoutMs,
        upstream: config.upstream,
        dispatcher: this.#probeClient,
        // The upstream may require the injected credentials for the probe too.
        ...(injected ? { extraHeaders: injected } : {}),
      });
      options.onProbe?.(result);
      return result;
    }, config.readyCacheMs);
    this.#exchange = {
      dispatcher: this.#pool,
      sseKeepaliveMs: config.sseKeepaliveMs,
      maxBodyBytes: config.maxBodyBytes,
      upstreamHeadersTimeoutMs: config.upstreamHeadersTimeoutMs,
      onRefused: () => this.#check.invalidate(),
      legacy: new LegacySessions(),
      peerForwards: options.peerForwards === true,
    };
  }

  requestHead(raw: readonly string[], forwarded: ForwardedFor): UpstreamRequestHead {
    return prepareUpstreamRequest(raw, this.#host, forwarded, this.#drop);
  }

  /** `route`: how session routing shapes the exchange (upstream/routing/). */
  forward(request: AdmittedRequest, observer: ExchangeObserver, route?: ExchangeRoute): InFlightExchange {
    if (this.#injected !== undefined) {
      const injected = this.#injected();
      for (let i = 0; i < injected.length; i++) request.headers.push(injected[i] as string);
    }
    const exchange = new HttpExchange(request, this.#exchange, observer, route);
    exchange.start();
    return exchange;
  }

  /** Creates a session on the upstream as a client would (session continuity replays one). */
  openSession(
    path: string,
    params: Record<string, unknown>,
    clientHeaders: readonly string[] = [],
  ): Promise<OpenedSession> {
    return openUpstreamSession(this.#pool, {
      path,
      host: this.#host,
      params,
      extraHeaders: [...clientHeaders, ...(this.#injected?.() ?? [])],
      // 0 (no headers timeout) is right for calls, not for a replay a request waits on.
      timeoutMs: this.#exchange.upstreamHeadersTimeoutMs || 30_000,
    });
  }

  check(): Promise<CheckResult> {
    return this.#check.get();
  }

  /**
   * Destroys the connections; resolves at once, not when their sockets have closed: nothing runs on
   * them any more (the drain is over), and the process may exit meanwhile.
   */
  close(): Promise<void> {
    void Promise.all([this.#pool.destroy(), this.#probeClient.destroy()]).catch(() => {});
    return Promise.resolve();
  }
}
