// The front door: the sidecar's listening sockets. Every request comes in here, and is either
// answered by the sidecar itself (its own endpoints; refused: malformed, unauthorized, draining) or
// named (a request id), admitted and handed to the upstream. The front door knows nothing of how
// the upstream serves it: undici, children or peers are the upstream's business (upstream/).

import { randomUUID } from "node:crypto";
import { once } from "node:events";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { SidecarConfig } from "../config.ts";
import { SIDECAR_ERRORS } from "../errors.ts";
import { rawSidecarError, writeSidecarError } from "../http/answers.ts";
import { ANSWER_BODY_WAIT_MS, readBodyPrefix } from "../http/body-prefix.ts";
import { ensureRequestId, pathOf } from "../http/headers.ts";
import { createServer } from "../http/node-http.ts";
import type { DrainPhase } from "../lifecycle/drain.ts";
import { describeJsonRpc } from "../protocol/jsonrpc.ts";
import { CAPTURE_LIMIT_BYTES } from "../protocol/response-capture.ts";
import { FORWARDED_BY_HEADER, SESSION_MOVED, SESSION_MOVED_HEADER } from "../sessions/hop.ts";
import type { ExchangeSummary } from "../telemetry/exchange-summary.ts";
import type { RouteClass } from "../telemetry/metrics.ts";
import type { Telemetry } from "../telemetry/telemetry.ts";
import type { AdmittedRequest, ExchangeObserver, Upstream } from "../upstream/upstream.ts";
import { type ApiKeyCheck, authorize } from "./auth.ts";
import type { InFlight } from "./in-flight.ts";
import { answerJson, type OwnEndpoints } from "./own-endpoints.ts";

export type FrontDoorConfig = Pick<
  SidecarConfig,
  | "port"
  | "host"
  | "healthPath"
  | "readyPath"
  | "metricsPath"
  | "metricsPort"
  | "maxHeaderBytes"
  | "maxHeaderCount"
  | "headersTimeoutMs"
  | "requestTimeoutMs"
  | "keepAliveTimeoutMs"
  | "drainRetryAfterMs"
  | "sessionRouting"
>;

export interface FrontDoorParts {
  readonly upstream: Upstream;
  readonly telemetry: Telemetry;
  readonly inFlight: InFlight;
  readonly ownEndpoints: OwnEndpoints;
  /** Set with --auth-secret: clients must present a key it accepts. */
  readonly apiKeys: ApiKeyCheck | undefined;
  readonly phase: () => DrainPhase;
}

export interface FrontDoorAddress {
  /** How a client on this host reaches the sidecar. */
  readonly url: URL;
  /** host:port as bound. */
  readonly listen: string;
}

export class FrontDoor implements ExchangeObserver {
  readonly #config: FrontDoorConfig;
  readonly #parts: FrontDoorParts;
  readonly #server: Server;
  #metricsServer: Server | undefined;
  #rejecting = false;

  constructor(config: FrontDoorConfig, parts: FrontDoorParts) {
    this.#config = config;
    this.#parts = parts;
    this.#server = createServer(
      {
        maxHeaderSize: config.maxHeaderBytes,
        headersTimeout: config.headersTimeoutMs,
        // Node's requestTimeout covers receiving the request only; 0 turns it off.
        requestTimeout: config.requestTimeoutMs,
        keepAliveTimeout: config.keepAliveTimeoutMs,
        // Event streams are long: never let an inactivity timeout cut one.
        connectionsCheckingInterval: 1000,
        // Only a WebSocket upgrade is refused (501): an optional offer such as h2c is ignored and
        // the request served as HTTP/1.1, as RFC 9110 §7.8 allows.
        shouldUpgradeCallback: (req: IncomingMessage) => /websocket/i.test(String(req.headers.upgrade ?? "")),
      },
      this.#onRequest,
    );
    // Node would answer 431 itself, with no body; the sidecar counts, and answers with its error code.
    this.#server.maxHeadersCount = 0;
    this.#server.timeout = 0;
    this.#server.on("upgrade", this.#onUpgrade);
  }

  async listen(): Promise<FrontDoorAddress> {
    const { port, host, metricsPort, metricsPath } = this.#config;
    this.#server.listen(port, host);
    await once(this.#server, "listening");
    if (metricsPort !== undefined) {
      const metricsServer = createServer((req, res) => {
        if (pathOf(req.url) === metricsPath) this.#own(req, res, "metrics");
        else answerJson(res, 404, { error: { code: "not_found", message: `metrics are at ${metricsPath}` } });
      });
      this.#metricsServer = metricsServer;
      metricsServer.listen(metricsPort, host);
      await once(metricsServer, "listening");
    }
    const address = this.#server.address() as AddressInfo;
    const bound = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const reachable = bound === "0.0.0.0" ? "127.0.0.1" : bound === "[::]" ? "[::1]" : bound;
    return { url: new URL(`http://${reachable}:${address.port}`), listen: `${bound}:${address.port}` };
  }

  /** The port /metrics is served on when --metrics-port is set. */
  get metricsPort(): number | undefined {
    const address = this.#metricsServer?.address();
    return address && typeof address === "object" ? address.port : undefined;
  }

  /**
   * No new work from here on: every new request gets 503 + Connection: close. The listening socket
   * itself stays open until the process stops, so that /health keeps answering 200 (a container or
   * Kubernetes liveness check opens a new connection each time; a refused connection would get a
   * draining container restarted) and /ready answers 503, and so that a client arriving late gets a
   * clean 503 rather than a refused connection.
   */
  stopAccepting(): void {
    if (this.#rejecting) return;
    this.#rejecting = true;
    this.#parts.inFlight.closeConnectionsAfterAnswers();
    this.#server.closeIdleConnections();
  }

  /** Stops listening and closes every connection (the drain is over, or cut). */
  close(): void {
    this.#server.close();
    this.#server.closeAllConnections();
    this.#metricsServer?.close();
    this.#metricsServer?.closeAllConnections();
  }

  // ---- ExchangeObserver ----

  streamOpened(kind: Parameters<Telemetry["streamOpened"]>[0]): void {
    this.#parts.telemetry.streamOpened(kind);
  }

  keepaliveSent(): void {
    this.#parts.telemetry.keepaliveSent();
  }

  exchangeFinished(res: ServerResponse, summary: ExchangeSummary): void {
    this.#parts.telemetry.exchangeFinished(summary, this.#parts.phase() !== "serving");
    this.#parts.inFlight.delete(res);
    // The answer is out; a keep-alive socket left idle now would only attract new work.
    if (this.#rejecting) this.#server.closeIdleConnections();
  }

  // ---- routing ----

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const config = this.#config;
    const url = req.url ?? "/";
    const path = pathOf(url);
    if (path === config.healthPath) this.#own(req, res, "health");
    else if (path === config.readyPath) this.#own(req, res, "ready");
    else if (path === config.metricsPath && config.metricsPort === undefined) this.#own(req, res, "metrics");
    else if (this.#rejecting) void this.#answerDraining(req, res);
    else if (url.charCodeAt(0) !== 0x2f /* "/" */) {
      writeSidecarError(res, SIDECAR_ERRORS.badRequestTarget, "request target must be a path (origin-form)");
    } else if (req.rawHeaders.length > config.maxHeaderCount * 2) {
      writeSidecarError(
        res,
        SIDECAR_ERRORS.tooManyHeaders,
        `more than --max-header-count (${config.maxHeaderCount}) header lines`,
      );
    } else {
      this.#admit(req, res);
    }
  };

  #admit(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const socket = req.socket;
    const { headers, info } = this.#parts.upstream.requestHead(req.rawHeaders, {
      remoteAddress: socket.remoteAddress,
      proto: "encrypted" in socket && socket.encrypted ? "https" : "http",
    });
    const id = ensureRequestId(headers, info.requestId, randomUUID);
    const request: AdmittedRequest = { req, res, id, head: info, headers, startedAt };
    this.#parts.telemetry.exchangeStarted();
    const apiKeys = this.#parts.apiKeys;
    if (apiKeys === undefined) this.#handOff(request);
    else {
      authorize(apiKeys, request, {
        inFlight: this.#parts.inFlight,
        allowed: () => this.#handOff(request),
        finished: (summary) => this.exchangeFinished(res, summary),
      });
    }
  }

  #handOff(request: AdmittedRequest): void {
    const exchange = this.#parts.upstream.forward(request, this);
    this.#parts.inFlight.set(request.res, exchange);
  }

  /** An answer of the sidecar's own endpoints: counted when it is out, in flight until then. */
  #own(req: IncomingMessage, res: ServerResponse, route: RouteClass): void {
    const started = performance.now();
    this.#parts.inFlight.trackAnswer(res);
    res.once("finish", () =>
      this.#parts.telemetry.ownAnswerFinished(route, res.statusCode, (performance.now() - started) / 1000),
    );
    const endpoints = this.#parts.ownEndpoints;
    if (route === "health") endpoints.health(req, res);
    else if (route === "ready") void endpoints.ready(req, res);
    else if (route === "metrics") void endpoints.metrics(req, res);
  }

  /**
   * New work on a connection that was open before the drain: 503 + Connection: close + Retry-After
   * (fastify does the same), with a JSON-RPC error carrying the request's id, so the client retries
   * elsewhere instead of seeing a reset. The body is read, bounded, only to find that id.
   */
  async #answerDraining(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#own(req, res, "rejected");
    const body =
      req.method === "POST" ? await readBodyPrefix(req, CAPTURE_LIMIT_BYTES, ANSWER_BODY_WAIT_MS) : undefined;
    if (res.destroyed) return;
    this.#parts.telemetry.refusedWhileDraining(req.method, req.url);
    if (this.#config.sessionRouting && req.headers[FORWARDED_BY_HEADER] !== undefined) {
      // A peer forwarded a request of a session this task owns: the peer continues the session itself.
      writeSidecarError(res, SIDECAR_ERRORS.sessionMoved, "the session's owner is draining", {
        message: body === undefined ? undefined : describeJsonRpc(body),
        close: true,
        headers: { [SESSION_MOVED_HEADER]: SESSION_MOVED },
      });
      return;
    }
    writeSidecarError(res, SIDECAR_ERRORS.draining, "sidecar is draining; retry on another instance", {
      message: body === undefined ? undefined : describeJsonRpc(body),
      retryAfterMs: this.#config.drainRetryAfterMs,
      close: true,
    });
  }

  #onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
    const spec = this.#rejecting ? SIDECAR_ERRORS.draining : SIDECAR_ERRORS.upgradeNotSupported;
    // Node hands an upgrade request over as a bare socket: the answer is written as raw HTTP/1.1.
    socket.end(
      rawSidecarError(spec, spec.description, {
        close: true,
        retryAfterMs: spec === SIDECAR_ERRORS.draining ? this.#config.drainRetryAfterMs : undefined,
      }),
    );
    this.#parts.telemetry.refusedUpgrade(req.method, req.url, spec.status);
  };
}
