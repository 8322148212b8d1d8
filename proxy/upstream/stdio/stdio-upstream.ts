// The stdio upstream: a stdio MCP server (most of the MCP ecosystem) behind the sidecar, one
// supervised child per MCP session, started on `initialize` (2025-11-25 Streamable HTTP) or on the
// GET that opens a legacy HTTP+SSE stream, stopped on DELETE or when that stream closes, after
// --session-idle-timeout, and at the drain. Requests are routed to their session by Mcp-Session-Id
// (legacy: the `sessionId` its `endpoint` event named); each session is one of the MCP SDK's
// transports joined to its child (session.ts).

import { randomUUID } from "node:crypto";
import type { SidecarConfig } from "../../config.ts";
import { SIDECAR_ERRORS } from "../../errors.ts";
import {
  type ForwardedFor,
  pathOf,
  prepareUpstreamRequest,
  type UpstreamRequestHead,
} from "../../http/headers.ts";
import type { CheckResult } from "../../lifecycle/readiness.ts";
import { describeJsonRpc } from "../../protocol/jsonrpc.ts";
import type { AdmittedRequest, ExchangeObserver, InFlightExchange, Upstream } from "../upstream.ts";
import { StdioExchange } from "./exchange.ts";
import {
  isInitialize,
  isLegacyStreamRequest,
  isStatelessRequest,
  legacySessionIdOf,
  readWhole,
} from "./requests.ts";
import { loadStdioSdk, type StdioSdk } from "./sdk.ts";
import { type ChildLink, type LegacyStream, type SessionEnd, StdioSession } from "./session.ts";
import { SparePool } from "./spares.ts";
import { StartBackoff } from "./start-backoff.ts";
import { StatelessRoute } from "./stateless-route.ts";

export const STDIO_CHECK_NAME = "stdio";

export type StdioUpstreamConfig = Pick<
  SidecarConfig,
  | "sseKeepaliveMs"
  | "maxBodyBytes"
  | "maxSessions"
  | "sessionIdleTimeoutMs"
  | "drainRetryAfterMs"
  | "drainTimeoutMs"
  | "stdioSpares"
  | "stdioPool"
  | "rollOnRotation"
> & { readonly stdioCommandLine: readonly string[] };

/** What the stdio upstream reports, for metrics. */
export interface StdioEvents {
  sessionStarted(): void;
  /** A child answered its first request (its initialize) this long after it was started. */
  childAnswered(seconds: number): void;
  sessionEnded(why: SessionEnd, startFailed: boolean): void;
  /** close() is done: every child is gone. */
  closed?(): void;
}

export interface StdioUpstreamOptions {
  /** Starts one child for a new session (the id its initialize answer will carry). */
  readonly startChild: (sessionId: string, sdk: StdioSdk) => ChildLink;
  readonly events?: StdioEvents;
  /** The --secret-env generation: bumped on a rotation (0 without secrets). */
  readonly envGeneration?: () => number;
  readonly now?: () => number;
}

export class StdioUpstream implements Upstream {
  readonly target: string;
  readonly #config: StdioUpstreamConfig;
  readonly #options: StdioUpstreamOptions;
  readonly #now: () => number;
  readonly #sessions = new Map<string, StdioSession>();
  /** Sessions whose child is starting (initialize not answered yet): they count against the limit. */
  readonly #starting = new Set<StdioSession>();
  readonly #reaper: ReturnType<typeof setInterval>;
  readonly #backoff: StartBackoff;
  #closed = false;
  readonly #sdk: Promise<StdioSdk>;
  #sdkProblem: string | undefined;
  #spares: SparePool | undefined;
  readonly #stateless: StatelessRoute | undefined;
  /** The --secret-env generation each session's child started with, and when its roll began. */
  readonly #generations = new Map<StdioSession, { generation: number; rollingSince?: number }>();

  constructor(config: StdioUpstreamConfig, options: StdioUpstreamOptions) {
    this.#sdk = loadStdioSdk();
    this.#sdk.catch((error: Error) => {
      this.#sdkProblem = `the MCP SDK cannot be loaded (${error.message})`;
    });
    this.#config = config;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#backoff = new StartBackoff(this.#now);
    this.#stateless =
      config.stdioPool > 0
        ? new StatelessRoute({
            size: config.stdioPool,
            sdk: this.#sdk,
            startChild: options.startChild,
            backoff: this.#backoff,
            startFailed: (description) => this.#startFailed(description),
            ready: (ms) => options.events?.childAnswered(ms / 1000),
            closed: () => this.#closed,
            generation: () => this.#generation(),
            now: this.#now,
          })
        : undefined;
    this.target = `stdio: ${config.stdioCommandLine.join(" ")}`;
    // Often enough for a roll to follow a rotation within a second, and an idle reap its timeout.
    const every = Math.max(50, Math.min(config.sessionIdleTimeoutMs / 4, 1000));
    this.#reaper = setInterval(() => this.#tick(), every);
    this.#reaper.unref();
    if (config.stdioSpares > 0) {
      void this.#sdk.then(
        (sdk) => {
          this.#spares = new SparePool(config.stdioSpares, {
            start: (sessionId) => ({
              sessionId,
              child: options.startChild(sessionId, sdk),
              generation: this.#generation(),
            }),
            generation: () => this.#generation(),
            died: (description) => this.#startFailed(description),
            mayStart: () => !this.#closed && this.#backoff.left() === 0,
            newSessionId: randomUUID,
          });
          this.#spares.refill();
        },
        () => {},
      );
    }
  }

  #generation(): number {
    return this.#options.envGeneration?.() ?? 0;
  }

  /** Sessions open (their children running or starting). */
  get sessions(): number {
    return this.#sessions.size + this.#starting.size;
  }

  /** Sessions by state, for metrics. */
  get counts(): { starting: number; active: number; spare: number; pool: number } {
    const spare = this.#spares?.size ?? 0;
    return {
      starting: this.#starting.size,
      active: this.#sessions.size,
      spare,
      pool: this.#stateless?.pool?.size ?? 0,
    };
  }

  requestHead(raw: readonly string[], forwarded: ForwardedFor): UpstreamRequestHead {
    // No upstream host to name: the head is read for what the sidecar acts on.
    return prepareUpstreamRequest(raw, "stdio", forwarded);
  }

  forward(request: AdmittedRequest, observer: ExchangeObserver): InFlightExchange {
    const exchange = new StdioExchange(request, observer);
    this.#serve(exchange).catch(() => {
      if (!request.res.headersSent) request.res.destroy();
    });
    return exchange;
  }

  async #serve(exchange: StdioExchange): Promise<void> {
    const { req, res, head } = exchange.request;
    let parsed: unknown;
    let body: Buffer | undefined;
    if (req.method === "POST") {
      body = await readWhole(req, this.#config.maxBodyBytes);
      if (body === undefined) {
        exchange.refuse(SIDECAR_ERRORS.bodyTooLarge, "request body exceeds --max-body-size", {
          close: true,
        });
        return;
      }
      exchange.message = describeJsonRpc(body);
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        // The SDK's own answer to a body that is not JSON.
        res.writeHead(400, { "content-type": "application/json" });
        res.end('{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}');
        return;
      }
    }
    let session: StdioSession | undefined;
    const legacyId =
      req.method === "POST" && head.sessionId === undefined ? legacySessionIdOf(req.url) : undefined;
    if (head.sessionId !== undefined || legacyId !== undefined) {
      session = this.#sessions.get(head.sessionId ?? (legacyId as string));
      if (session === undefined || session.isLegacy !== (legacyId !== undefined)) {
        exchange.refuse(SIDECAR_ERRORS.sessionNotFound, "Session not found", {}, -32001);
        return;
      }
    } else if (this.#stateless !== undefined && req.method === "POST" && isStatelessRequest(req)) {
      await this.#stateless.serve(exchange, body as Buffer);
      return;
    } else if (req.method === "POST" && isInitialize(parsed)) {
      session = this.#newSession(exchange, await this.#sdk);
      if (session === undefined) return;
    } else if (isLegacyStreamRequest(req, head.accept)) {
      // Legacy HTTP+SSE (2024-11-05): this GET is the session; its POSTs go to the same path.
      const legacy: LegacyStream = { stream: res, endpoint: pathOf(req.url ?? "/") };
      session = this.#newSession(exchange, await this.#sdk, legacy);
      if (session === undefined) return;
      exchange.session = session;
      await session.openLegacyStream();
      return;
    } else {
      exchange.refuse(SIDECAR_ERRORS.sessionRequired, "Bad Request: No valid session ID provided");
      return;
    }
    exchange.session = session;
    await session.handle(req, res, parsed);
    // The SDK refused the initialize itself (406, 415, a batch): no session came of it, and its
    // child and its place under --max-sessions are given back at once.
    if (session.sessionId === undefined) void session.end("refused");
  }

  #newSession(exchange: StdioExchange, sdk: StdioSdk, legacy?: LegacyStream): StdioSession | undefined {
    if (this.#closed) {
      exchange.refuse(SIDECAR_ERRORS.draining, "sidecar is draining; retry on another instance", {
        close: true,
        retryAfterMs: this.#config.drainRetryAfterMs,
      });
      return undefined;
    }
    const backoff = this.#backoff.left();
    if (backoff > 0) {
      exchange.refuse(
        SIDECAR_ERRORS.stdioStartFailed,
        `the MCP server cannot be started (${this.#backoff.reason}); next try in ${Math.ceil(backoff / 1000)} s`,
        { retryAfterMs: backoff },
      );
      return undefined;
    }
    if (this.sessions >= this.#config.maxSessions) {
      exchange.refuse(
        SIDECAR_ERRORS.tooManySessions,
        `--max-sessions (${this.#config.maxSessions}) sessions are open; retry later`,
        { retryAfterMs: this.#config.drainRetryAfterMs },
      );
      return undefined;
    }
    // The session's id is chosen before its child starts, so the child's log lines name it too.
    const spare = this.#spares?.take();
    const sessionId = spare?.sessionId ?? randomUUID();
    const generation = spare?.generation ?? this.#generation();
    const child = spare?.child ?? this.#options.startChild(sessionId, sdk);
    const session: StdioSession = new StdioSession(child, {
      sdk,
      keepAliveMs: this.#config.sseKeepaliveMs,
      maxBodyBytes: this.#config.maxBodyBytes,
      now: this.#now,
      newSessionId: () => sessionId,
      ...(legacy ? { legacy } : {}),
      initialized: (s, id) => {
        this.#starting.delete(s);
        this.#sessions.set(id, s);
      },
      ended: (s, why) => this.#ended(s, why),
      firstAnswer: (ms) => this.#options.events?.childAnswered(ms / 1000),
    });
    // A legacy session has its id from the start, and no initialize to wait for before its POSTs.
    if (legacy === undefined) this.#starting.add(session);
    else this.#sessions.set(sessionId, session);
    this.#generations.set(session, { generation });
    this.#options.events?.sessionStarted();
    return session;
  }

  #ended(session: StdioSession, why: SessionEnd): void {
    this.#starting.delete(session);
    this.#generations.delete(session);
    if (session.sessionId !== undefined && this.#sessions.get(session.sessionId) === session)
      this.#sessions.delete(session.sessionId);
    const startFailed = why === "child_exited" && !session.answeredAny;
    if (startFailed) this.#startFailed(session.exitDescription ?? "exited");
    else if (session.answeredAny) this.#backoff.succeeded();
    this.#options.events?.sessionEnded(why, startFailed);
  }

  #startFailed(description: string): void {
    this.#backoff.failed(`${this.#config.stdioCommandLine.join(" ")} ${description}`);
  }

  /** Idle sessions end; after a rotation, each child with old secrets retires once its calls are done. */
  #tick(): void {
    const now = this.#now();
    const generation = this.#generation();
    for (const session of this.#sessions.values()) {
      if (session.inFlight === 0 && session.idleFor(now) >= this.#config.sessionIdleTimeoutMs) {
        void session.end("idle");
        continue;
      }
      const state = this.#generations.get(session);
      if (!this.#config.rollOnRotation || state === undefined || state.generation === generation) continue;
      state.rollingSince ??= now;
      const between = session.inFlight === 0 && session.handshakeDone;
      if (between || now - state.rollingSince >= this.#config.drainTimeoutMs) void session.end("rolled");
    }
    this.#spares?.refill();
    this.#stateless?.pool?.retireStale(generation);
    this.#stateless?.pool?.fill();
  }

  check(): Promise<CheckResult> {
    const sdkProblem = this.#sdkProblem ?? this.#stateless?.problem;
    if (sdkProblem !== undefined)
      return Promise.resolve({ name: STDIO_CHECK_NAME, ok: false, reason: sdkProblem });
    const reason = this.#backoff.describe();
    return Promise.resolve(
      reason === undefined
        ? { name: STDIO_CHECK_NAME, ok: true }
        : { name: STDIO_CHECK_NAME, ok: false, reason },
    );
  }

  /** Ends every session: each child stopped as a group (stdin, SIGTERM, SIGKILL); resolves when all are gone. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#reaper);
    await Promise.allSettled([
      this.#spares?.stopAll(),
      this.#stateless?.pool?.close(),
      ...[...this.#sessions.values(), ...this.#starting].map((session) => session.end("stopped")),
    ]);
    this.#options.events?.closed?.();
  }
}
