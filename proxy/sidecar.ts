// The sidecar: the one module that owns sockets. It routes the sidecar's own endpoints, hands every
// other request to an Exchange (forward.ts), and applies the drain state machine's actions
// (drain.ts) to the listener, the connections and the exchanges in flight.
//
// Library API mirrors SIGTERM: `close()` is the graceful drain (idempotent), `destroy()` stops now.

import { randomUUID } from "node:crypto";
import { once } from "node:events";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { needsSecretsAgent, type SidecarConfig } from "./config.ts";
import { Client, Pool } from "./deps.ts";
import type { DrainOutcome, DrainPhase } from "./drain.ts";
import { DrainController, type SocketAction } from "./drain-controller.ts";
import { SIDECAR_ERRORS, type SidecarErrorSpec, sidecarErrorHeaders } from "./errors.ts";
import {
  CAPTURE_LIMIT_BYTES,
  Exchange,
  type ExchangeListener,
  type ForwardSettings,
  type StreamKind,
} from "./forward.ts";
import { pathOf, prepareUpstreamRequest } from "./http-headers.ts";
import { describeJsonRpc, sidecarErrorBody } from "./jsonrpc.ts";
import { createLogger, hashSessionId, type Logger } from "./logger.ts";
import { type RouteClass, SidecarMetrics } from "./metrics.ts";
import { CachedCheck, type CheckResult, evaluateReadiness } from "./readiness.ts";
import { AgentClient } from "./secrets/agent-client.ts";
import { type Scheduler, SecretsRuntime } from "./secrets/runtime.ts";
import { probeUpstream } from "./upstream-probe.ts";

// node:http as the CommonJS module, not an ESM import: the ESM facade of node:http reads every
// export, and its WebSocket/MessageEvent getters load Node's internal undici (fetch and all). That
// was about 90 ms and 14 MB of the sidecar's start (issue 8: start to ready, idle RSS).
const { createServer, STATUS_CODES } = process.getBuiltinModule("node:http");

export const VERSION = "0.1.0";

/** A readiness dependency added by another module (secrets): must resolve, never reject. */
export type ReadinessCheck = () => CheckResult | Promise<CheckResult>;

export interface SidecarOptions {
  readonly logger?: Logger;
  /**
   * The Secrets Manager Agent's SSRF token, read on every agent request (so a file:// token can
   * change). Required when a secret delivery is configured; the CLI reads it as the agent does.
   */
  readonly agentToken?: () => string;
  /** The clock and timers of the secrets poller (tests drive it by hand). */
  readonly secretsScheduler?: Scheduler;
  /** Process metrics (CPU, memory, event loop) in /metrics; default true. */
  readonly processMetrics?: boolean;
  /** Extra readiness checks, all of which must pass for /ready to answer 200. */
  readonly readinessChecks?: readonly ReadinessCheck[];
}

const REQUEST_ID_PATTERN = /^[\w.:@/+=-]{1,128}$/;
const DRAIN_BODY_WAIT_MS = 1000;

/** Up to `limit` bytes of a request body within `waitMs`; undefined when larger, slower or broken. */
function readBodyPrefix(req: IncomingMessage, limit: number, waitMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (body: Buffer | undefined) => {
      clearTimeout(timer);
      req.off("data", onData).off("end", onEnd).off("error", onError);
      resolve(body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done(undefined);
      else chunks.push(chunk);
    };
    const onEnd = () => done(Buffer.concat(chunks));
    const onError = () => done(undefined);
    const timer = setTimeout(() => done(undefined), waitMs);
    req.on("data", onData).on("end", onEnd).on("error", onError);
  });
}

export class Sidecar implements ExchangeListener {
  readonly config: SidecarConfig;
  readonly logger: Logger;
  readonly #server: Server;
  readonly #pool: Pool;
  readonly #probeClient: Client;
  readonly #upstreamCheck: CachedCheck;
  readonly metrics: SidecarMetrics;
  #metricsServer: Server | undefined;
  #lastPhase: DrainPhase = "serving";
  readonly #extraChecks: readonly ReadinessCheck[];
  readonly secrets: SecretsRuntime | undefined;
  readonly #agentClient: AgentClient | undefined;
  /** Lower-case header names the sidecar consumes (its auth) or sets (injected secrets). */
  readonly #ownedHeaders: ReadonlySet<string> | undefined;
  readonly #forward: ForwardSettings;
  readonly #upstreamHost: string;
  readonly #exchanges = new Set<Exchange>();
  /** 503 answers being written during a drain: the process waits for them too, so none is reset. */
  readonly #rejections = new Set<ServerResponse>();
  readonly #startedAt = Date.now();
  readonly #drain: DrainController;
  #drainStartedAt = 0;
  #rejecting = false;
  #finished: Promise<DrainOutcome>;
  #resolveFinished!: (outcome: DrainOutcome) => void;
  #address: URL | undefined;

  constructor(config: SidecarConfig, options: SidecarOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? createLogger(config.logLevel);
    if (needsSecretsAgent(config)) {
      if (!options.agentToken)
        throw new Error("a secret delivery is configured but no agent token was given");
      this.#agentClient = new AgentClient({
        agent: config.secretsAgent,
        token: options.agentToken,
        timeoutMs: config.secretsAgentTimeoutMs,
      });
      this.secrets = new SecretsRuntime(this.#agentClient, config, this.logger, options.secretsScheduler);
      const owned = new Set(this.secrets.injectedHeaderNames);
      if (config.authSecret) owned.add("authorization");
      this.#ownedHeaders = owned;
    }
    const secrets = this.secrets;
    this.metrics = new SidecarMetrics(
      { maxTools: config.metricsMaxTools, processMetrics: options.processMetrics ?? true },
      secrets,
    );
    this.#extraChecks = [...(options.readinessChecks ?? []), ...(secrets ? [() => secrets.check()] : [])];
    this.#upstreamHost = config.upstream.host;
    this.#drain = new DrainController(
      { delayMs: config.drainDelayMs, timeoutMs: config.drainTimeoutMs },
      (action) => this.#perform(action),
    );
    this.#finished = new Promise((resolve) => {
      this.#resolveFinished = resolve;
    });

    this.#pool = new Pool(config.upstream.origin, {
      connections: config.upstreamConnections === 0 ? null : config.upstreamConnections,
      pipelining: 1,
      connect: { timeout: config.upstreamConnectTimeoutMs },
      headersTimeout: config.upstreamHeadersTimeoutMs,
      bodyTimeout: 0,
    });
    this.#probeClient = new Client(config.upstream.origin, {
      pipelining: 1,
      connect: { timeout: config.readyTimeoutMs },
    });
    this.#upstreamCheck = new CachedCheck(
      () =>
        this.#recordProbe(
          probeUpstream({
            kind: config.readyProbe,
            path: config.readyProbePath,
            timeoutMs: config.readyTimeoutMs,
            upstream: config.upstream,
            dispatcher: this.#probeClient,
            // The upstream may require the injected credentials for the probe too.
            ...(secrets ? { extraHeaders: () => secrets.upstreamHeaders } : {}),
          }),
        ),
      config.readyCacheMs,
    );
    this.#forward = {
      dispatcher: this.#pool,
      sseKeepaliveMs: config.sseKeepaliveMs,
      maxBodyBytes: config.maxBodyBytes,
      upstreamHeadersTimeoutMs: config.upstreamHeadersTimeoutMs,
    };

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

  /** Starts listening; resolves with the sidecar's own base URL. */
  async listen(): Promise<URL> {
    this.#server.listen(this.config.port, this.config.host);
    await once(this.#server, "listening");
    const address = this.#server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.secrets?.start();
    if (this.config.metricsPort !== undefined) {
      const metricsServer = createServer((req, res) => {
        if (pathOf(req.url) === this.config.metricsPath) void this.#answerMetrics(req, res);
        else
          this.#answerJson(res, 404, {
            error: { code: "not_found", message: `metrics are at ${this.config.metricsPath}` },
          });
      });
      metricsServer.listen(this.config.metricsPort, this.config.host);
      await once(metricsServer, "listening");
      this.#metricsServer = metricsServer;
    }
    this.#address = new URL(
      `http://${host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host}:${address.port}`,
    );
    this.logger.info(
      {
        url: this.#address.href,
        listen: `${host}:${address.port}`,
        upstream: this.config.upstream.origin,
        version: VERSION,
      },
      "sidecar listening",
    );
    // Lifecycle lines go out at once (request lines are buffered; see logger.ts).
    this.logger.flush();
    return this.#address;
  }

  get url(): URL | undefined {
    return this.#address;
  }

  /** Where /metrics is served (the main URL unless --metrics-port is set). */
  get metricsUrl(): URL | undefined {
    const address = this.#metricsServer?.address();
    if (address && typeof address === "object")
      return new URL(this.config.metricsPath, `http://127.0.0.1:${address.port}`);
    return this.#address ? new URL(this.config.metricsPath, this.#address) : undefined;
  }

  get phase(): DrainPhase {
    return this.#drain.state.phase;
  }

  get inFlight(): number {
    return this.#exchanges.size + this.#rejections.size;
  }

  get draining(): boolean {
    return this.#drain.state.phase === "draining" || this.#drain.state.phase === "stopped";
  }

  /** Graceful drain, as on SIGTERM. Safe to call more than once; resolves when stopped. */
  close(): Promise<DrainOutcome> {
    if (this.#drain.state.phase === "serving") {
      this.#drainStartedAt = Date.now();
      this.logger.info(
        {
          inFlight: this.#exchanges.size,
          drainDelayMs: this.config.drainDelayMs,
          drainTimeoutMs: this.config.drainTimeoutMs,
        },
        "drain started",
      );
      this.logger.flush();
      this.#drain.dispatch({ type: "in-flight", count: this.inFlight });
      this.#drain.dispatch({ type: "stop-requested" });
    }
    return this.#finished;
  }

  /** Stops at once, cutting whatever is in flight, as on a second SIGTERM. */
  destroy(): Promise<DrainOutcome> {
    if (this.#drain.state.phase === "serving") this.#drainStartedAt = Date.now();
    this.#drain.dispatch({ type: "in-flight", count: this.inFlight });
    this.#drain.dispatch({ type: "force-requested" });
    return this.#finished;
  }

  /** Resolves when the sidecar has stopped (by close(), destroy() or the drain timeout). */
  get finished(): Promise<DrainOutcome> {
    return this.#finished;
  }

  // ---- ExchangeListener ----

  upstreamUnreachable(): void {
    this.#upstreamCheck.invalidate();
  }

  streamOpened(kind: StreamKind): void {
    this.metrics.openStreams.inc({ kind });
  }

  keepaliveSent(): void {
    this.metrics.keepalives.inc();
  }

  exchangeClosed(exchange: Exchange): void {
    this.#exchanges.delete(exchange);
    this.#recordExchange(exchange);
    this.#logExchange(exchange);
    if (this.#drain.state.phase !== "serving") {
      this.#drain.dispatch({ type: "in-flight", count: this.inFlight });
      // The answer is out; a keep-alive socket left idle now would only attract new work.
      if (this.#rejecting) this.#server.closeIdleConnections();
    }
  }

  // ---- request routing ----

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? "/";
    const path = pathOf(url);
    if (path === this.config.healthPath) {
      this.#countOwn(res, "health");
      this.#answerHealth(req, res);
    } else if (path === this.config.readyPath) {
      this.#countOwn(res, "ready");
      void this.#answerReady(req, res);
    } else if (path === this.config.metricsPath && this.config.metricsPort === undefined) {
      void this.#answerMetrics(req, res);
    } else if (this.#rejecting) {
      void this.#answerDraining(req, res);
    } else if (url.charCodeAt(0) !== 0x2f /* "/" */) {
      this.#answerSidecarError(
        res,
        SIDECAR_ERRORS.badRequestTarget,
        "request target must be a path (origin-form)",
      );
    } else if (req.rawHeaders.length > this.config.maxHeaderCount * 2) {
      this.#answerSidecarError(
        res,
        SIDECAR_ERRORS.tooManyHeaders,
        `more than --max-header-count (${this.config.maxHeaderCount}) header lines`,
      );
    } else {
      this.#startExchange(req, res);
    }
  };

  #startExchange(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const { headers, info } = prepareUpstreamRequest(
      req.rawHeaders,
      this.#upstreamHost,
      {
        remoteAddress: socket.remoteAddress,
        proto: "encrypted" in socket && socket.encrypted ? "https" : "http",
      },
      this.#ownedHeaders,
    );
    let requestId = info.requestId;
    if (requestId === undefined || !REQUEST_ID_PATTERN.test(requestId)) {
      // No usable id from the client: the upstream and the logs get the same new one.
      requestId = randomUUID();
      if (info.requestId !== undefined) {
        for (let i = headers.length - 2; i >= 0; i -= 2) {
          if ((headers[i] as string).toLowerCase() === "x-request-id") headers.splice(i, 2);
        }
      }
      headers.push("x-request-id", requestId);
    }
    const exchange = new Exchange(req, res, requestId, info, this.#forward, this);
    this.#exchanges.add(exchange);
    this.metrics.httpInFlight.inc();
    // During --drain-delay the sidecar still takes work: the drain must count it, or it would end
    // (and cut this request) as soon as the delay is over.
    if (this.#drain.state.phase !== "serving")
      this.#drain.dispatch({ type: "in-flight", count: this.inFlight });
    const secrets = this.secrets;
    if (secrets === undefined) {
      exchange.start(headers);
      return;
    }
    const verdict = secrets.authRequired ? secrets.checkAuthorization(info.authorization) : "ok";
    if (verdict === "ok") {
      this.#startWithSecrets(exchange, headers, secrets);
    } else if (verdict === "unknown") {
      // Maybe a client already holding a key the sidecar has not polled yet: ask the agent once.
      void secrets.refreshAuthOnDemand().then(() => {
        if (exchange.res.destroyed) return;
        if (secrets.checkAuthorization(info.authorization) === "ok")
          this.#startWithSecrets(exchange, headers, secrets);
        else this.#unauthorized(exchange, true);
      });
    } else {
      this.#unauthorized(exchange, false);
    }
  }

  /** The secret headers are read once, here: a rotation applies to the next request, never mid-way. */
  #startWithSecrets(exchange: Exchange, headers: string[], secrets: SecretsRuntime): void {
    const injected = secrets.upstreamHeaders;
    for (let i = 0; i < injected.length; i++) headers.push(injected[i] as string);
    exchange.start(headers);
  }

  #unauthorized(exchange: Exchange, presented: boolean): void {
    exchange.reject(
      SIDECAR_ERRORS.unauthorized,
      presented
        ? "the API key matches no current or previous version"
        : "an API key is required: Authorization: Bearer <key>",
      "unauthorized",
      {
        "www-authenticate": presented
          ? 'Bearer realm="mcp-sidecar", error="invalid_token"'
          : 'Bearer realm="mcp-sidecar"',
      },
    );
  }

  /** While draining, an answer being written counts as in flight: the exit waits for it. */
  #trackWhileDraining(res: ServerResponse): void {
    this.#rejections.add(res);
    this.#drain.dispatch({ type: "in-flight", count: this.inFlight });
    res.once("close", () => {
      this.#rejections.delete(res);
      this.#drain.dispatch({ type: "in-flight", count: this.inFlight });
    });
  }

  /** Counts an answer of the sidecar's own endpoints when it is out. */
  #countOwn(res: ServerResponse, route: RouteClass): void {
    const started = performance.now();
    if (this.#drain.state.phase !== "serving" && route !== "rejected") this.#trackWhileDraining(res);
    res.once("finish", () => {
      this.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
      this.metrics.httpDuration.observe({ route }, (performance.now() - started) / 1000);
    });
  }

  async #answerMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#countOwn(res, "metrics");
    if (!this.#ownEndpointMethod(req, res)) return;
    const text = await this.metrics.registry.metrics();
    if (res.destroyed) return;
    res.writeHead(200, {
      "content-type": this.metrics.registry.contentType,
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : text);
  }

  async #recordProbe(probe: Promise<CheckResult>): Promise<CheckResult> {
    const result = await probe;
    this.metrics.probes.inc({ result: result.ok ? "ok" : "failed" });
    if (result.latencyMs !== undefined) this.metrics.probeDuration.observe(result.latencyMs / 1000);
    return result;
  }

  #recordExchange(exchange: Exchange): void {
    const metrics = this.metrics;
    const seconds = exchange.ageMs / 1000;
    const route: RouteClass = exchange.outcome === "unauthorized" ? "rejected" : "forward";
    metrics.httpInFlight.dec();
    metrics.httpRequests.inc({ route, status: String(exchange.status || exchange.res.statusCode) });
    metrics.httpDuration.observe({ route }, seconds);
    if (exchange.streamKind !== undefined) metrics.openStreams.dec({ kind: exchange.streamKind });
    if (exchange.upstreamErrorKind !== undefined)
      metrics.upstreamErrors.inc({ kind: exchange.upstreamErrorKind });
    const rawMethod = exchange.mcpMethod;
    const isRequest =
      exchange.message?.hasRequest ??
      (exchange.head.mcpMethod !== undefined && !rawMethod?.startsWith("notifications/"));
    if (rawMethod !== undefined && isRequest) {
      const outcome = exchange.callOutcome;
      if (outcome !== undefined) {
        const method = metrics.method(rawMethod);
        const tool = metrics.tool(rawMethod, exchange.mcpName);
        metrics.mcpCalls.inc({ method, tool, outcome });
        metrics.mcpDuration.observe({ method, tool }, seconds);
      }
    }
    if (this.#drain.state.phase !== "serving") {
      metrics.drainRequests.inc({ result: exchange.outcome === "cut" ? "cut" : "completed" });
    }
  }

  /** Keeps the drain metrics in step with the state machine's phase. */
  #syncDrainPhase(): void {
    const phase = this.#drain.state.phase;
    if (phase === this.#lastPhase) return;
    if (this.#lastPhase === "serving") this.metrics.drainStarted.set(Date.now() / 1000);
    if (phase === "stopped") this.metrics.drainFinished.set(Date.now() / 1000);
    this.#lastPhase = phase;
    this.metrics.setDrainPhase(phase);
  }

  #answerHealth(req: IncomingMessage, res: ServerResponse): void {
    if (!this.#ownEndpointMethod(req, res)) return;
    this.#answerJson(res, 200, {
      status: "ok",
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      state: this.#drain.state.phase === "delaying" ? "draining" : this.#drain.state.phase,
    });
  }

  async #answerReady(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#ownEndpointMethod(req, res)) return;
    let checks: CheckResult[] = [];
    // While draining, the answer is already known: do not touch the upstream.
    if (this.#drain.state.phase === "serving") {
      checks = await Promise.all([this.#upstreamCheck.get(), ...this.#extraChecks.map((check) => check())]);
    }
    const report = evaluateReadiness(this.#drain.state.phase, checks);
    if (res.destroyed) return;
    this.#answerJson(res, report.ready ? 200 : 503, {
      status: report.ready ? "ready" : "not_ready",
      state: report.state,
      reasons: report.reasons,
      checks: report.checks,
    });
  }

  #ownEndpointMethod(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method === "GET" || req.method === "HEAD") return true;
    res.setHeader("allow", "GET, HEAD");
    this.#answerSidecarError(
      res,
      SIDECAR_ERRORS.methodNotAllowed,
      `${req.method} is not allowed on ${req.url}`,
    );
    return false;
  }

  #answerJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
    });
    // A body written to a HEAD answer makes Node close the connection.
    res.end(res.req.method === "HEAD" ? undefined : text);
  }

  #answerSidecarError(
    res: ServerResponse,
    spec: SidecarErrorSpec,
    message: string,
    requestBody?: Buffer,
  ): void {
    const info = requestBody === undefined ? undefined : describeJsonRpc(requestBody);
    const body = sidecarErrorBody(info, { code: spec.code, status: spec.status }, message);
    res.writeHead(
      spec.status,
      sidecarErrorHeaders(
        body,
        spec === SIDECAR_ERRORS.draining ? { retryAfterMs: this.config.drainRetryAfterMs, close: true } : {},
      ),
    );
    res.end(body);
  }

  /**
   * New work on a connection that was open before the drain: 503 + Connection: close + Retry-After
   * (fastify does the same), with a JSON-RPC error carrying the request's id, so the client retries
   * elsewhere instead of seeing a reset. The body is read, bounded, only to find that id.
   */
  async #answerDraining(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#countOwn(res, "rejected");
    this.#trackWhileDraining(res);
    // The JSON-RPC id is worth a short wait for the body, not the drain: a stalled upload gets its
    // 503 without an id after DRAIN_BODY_WAIT_MS.
    const body =
      req.method === "POST" ? await readBodyPrefix(req, CAPTURE_LIMIT_BYTES, DRAIN_BODY_WAIT_MS) : undefined;
    if (res.destroyed) return;
    this.logger.info(
      {
        reqId: randomUUID(),
        method: req.method,
        path: pathOf(req.url),
        status: 503,
        outcome: "rejected_draining",
      },
      "request",
    );
    this.#answerSidecarError(
      res,
      SIDECAR_ERRORS.draining,
      "sidecar is draining; retry on another instance",
      body,
    );
  }

  #onUpgrade = (req: IncomingMessage, socket: import("node:stream").Duplex): void => {
    const spec = this.#rejecting ? SIDECAR_ERRORS.draining : SIDECAR_ERRORS.upgradeNotSupported;
    const body = sidecarErrorBody(undefined, { code: spec.code, status: spec.status }, spec.description);
    // Node hands an upgrade request over as a bare socket: the answer is written as raw HTTP/1.1.
    const headers = sidecarErrorHeaders(body, {
      close: true,
      retryAfterMs: spec === SIDECAR_ERRORS.draining ? this.config.drainRetryAfterMs : undefined,
    });
    let head = `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status]}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    socket.end(`${head}\r\n${body}`);
    this.logger.info({ method: req.method, path: pathOf(req.url), status: spec.status }, "request");
  };

  #logExchange(exchange: Exchange): void {
    if (!this.logger.isLevelEnabled("info")) return;
    const req = exchange.req;
    const line: Record<string, unknown> = {
      reqId: exchange.id,
      method: req.method,
      path: pathOf(req.url),
      status: exchange.status,
      durationMs: Math.round(exchange.ageMs * 100) / 100,
      outcome: exchange.outcome ?? "completed",
      kind: exchange.kind,
    };
    const mcpMethod = exchange.mcpMethod;
    if (mcpMethod !== undefined) line.mcpMethod = mcpMethod;
    if (mcpMethod === "tools/call") line.tool = exchange.mcpName;
    if (mcpMethod !== undefined && exchange.callOutcome !== undefined) line.mcpOutcome = exchange.callOutcome;
    if (exchange.head.sessionId !== undefined) line.session = hashSessionId(exchange.head.sessionId);
    if (exchange.upstreamMs !== undefined) line.upstreamMs = Math.round(exchange.upstreamMs * 100) / 100;
    if (exchange.errorCode !== undefined) line.error = exchange.errorCode;
    if (exchange.keepalivesSent > 0) line.keepalives = exchange.keepalivesSent;
    this.logger.info(line, "request");
  }

  // ---- drain shell: applies the state machine's actions ----

  #perform(action: SocketAction): void {
    this.#syncDrainPhase();
    switch (action.type) {
      case "fail-readiness":
        // Nothing to do: /ready reads the phase. Kept as an action so the order is explicit and tested.
        return;
      case "stop-accepting":
        if (this.#rejecting) return;
        // No new work from here on: every new request gets 503 + Connection: close. The listening
        // socket itself stays open until the process stops, so that /health keeps answering 200 (a
        // container or Kubernetes liveness check opens a new connection each time; a refused
        // connection would get a draining container restarted) and /ready answers 503, and so that
        // a client arriving late gets a clean 503 rather than a refused connection.
        this.#rejecting = true;
        this.#server.closeIdleConnections();
        return;
      case "close-endless-streams":
        for (const exchange of [...this.#exchanges]) {
          if (exchange.kind !== "endless") continue;
          // 2025-era event streams (GET) learn when to reconnect; a 2026 listen POST just ends.
          exchange.closeEndless(exchange.req.method === "GET" ? this.config.drainRetryAfterMs : undefined);
        }
        return;
      case "cut-in-flight":
        for (const exchange of [...this.#exchanges]) {
          this.logger.warn(
            {
              reqId: exchange.id,
              method: exchange.req.method,
              path: pathOf(exchange.req.url),
              mcpMethod: exchange.mcpMethod,
              tool: exchange.mcpMethod === "tools/call" ? exchange.mcpName : undefined,
              ageMs: Math.round(exchange.ageMs),
              kind: exchange.kind,
            },
            "request cut by drain",
          );
          exchange.cut();
        }
        return;
      case "finish": {
        const outcome = action.outcome;
        this.#server.close();
        this.#server.closeAllConnections();
        void this.#pool.destroy().catch(() => {});
        void this.#probeClient.destroy().catch(() => {});
        this.secrets?.stop();
        this.#metricsServer?.close();
        this.#metricsServer?.closeAllConnections();
        void this.#agentClient?.close().catch(() => {});
        const log =
          outcome.exitCode === 0 ? this.logger.info.bind(this.logger) : this.logger.warn.bind(this.logger);
        log(
          {
            reason: outcome.reason,
            cut: outcome.cut,
            drainMs: Date.now() - this.#drainStartedAt,
            exitCode: outcome.exitCode,
          },
          "sidecar stopped",
        );
        this.#resolveFinished(outcome);
        return;
      }
    }
  }
}

export function createSidecar(config: SidecarConfig, options?: SidecarOptions): Sidecar {
  return new Sidecar(config, options);
}
