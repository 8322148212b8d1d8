// The sidecar: the composition root and its lifecycle. It wires the front door (front/: sockets,
// own endpoints, auth, admission), the upstream (upstream/http/), the secrets (secrets/) and
// telemetry (telemetry/), and applies the drain state machine's actions (lifecycle/drain.ts) to them.
//
// Library API mirrors SIGTERM: `close()` is the graceful drain (idempotent), `destroy()` stops now.
// As undici's dispatchers do, it refuses to start again once closed.

import { needsSecretsAgent, type SidecarConfig } from "./config.ts";
import { FrontDoor } from "./front/front-door.ts";
import { InFlight } from "./front/in-flight.ts";
import { OwnEndpoints } from "./front/own-endpoints.ts";
import type { DrainOutcome, DrainPhase } from "./lifecycle/drain.ts";
import { DrainController, type SocketAction } from "./lifecycle/drain-controller.ts";
import type { CheckResult } from "./lifecycle/readiness.ts";
import { AgentClient } from "./secrets/agent-client.ts";
import { type Scheduler, SecretsRuntime } from "./secrets/runtime.ts";
import { FORWARDED_BY_HEADER } from "./sessions/hop.ts";
import { createLogger, type Logger } from "./telemetry/logger.ts";
import { SidecarMetrics } from "./telemetry/metrics.ts";
import { Telemetry } from "./telemetry/telemetry.ts";
import { HttpUpstream } from "./upstream/http/http-upstream.ts";
import { createSessionRouting, type SessionRouting } from "./upstream/routing/create.ts";
import { createStdioUpstream } from "./upstream/stdio/create.ts";
import type { Upstream } from "./upstream/upstream.ts";

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

/** Thrown by listen() on a sidecar that was closed: a stopped sidecar never binds a port again. */
export class SidecarClosedError extends Error {
  override name = "SidecarClosedError";
  readonly code = "ERR_MCP_SIDECAR_CLOSED";
}

export class Sidecar {
  readonly config: SidecarConfig;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly secrets: SecretsRuntime | undefined;
  readonly #agentClient: AgentClient | undefined;
  readonly #telemetry: Telemetry;
  readonly #upstream: Upstream;
  readonly #inFlight: InFlight;
  readonly #frontDoor: FrontDoor;
  readonly #drain: DrainController;
  readonly #finished: Promise<DrainOutcome>;
  #resolveFinished!: (outcome: DrainOutcome) => void;
  #drainStartedAt = 0;
  #listening: Promise<URL> | undefined;
  #killChildren: () => void = () => {};
  readonly #routing: SessionRouting | undefined;
  #address: URL | undefined;
  #advertised: string | undefined;

  constructor(config: SidecarConfig, options: SidecarOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? createLogger(config.logLevel);
    let secrets: SecretsRuntime | undefined;
    if (needsSecretsAgent(config)) {
      if (!options.agentToken)
        throw new Error("a secret delivery is configured but no agent token was given");
      this.#agentClient = new AgentClient({
        agent: config.secretsAgent,
        token: options.agentToken,
        timeoutMs: config.secretsAgentTimeoutMs,
      });
      secrets = new SecretsRuntime(this.#agentClient, config, this.logger, options.secretsScheduler);
    }
    this.secrets = secrets;
    this.metrics = new SidecarMetrics(
      { maxTools: config.metricsMaxTools, processMetrics: options.processMetrics ?? true },
      secrets,
    );
    const telemetry = new Telemetry(this.metrics, this.logger);
    this.#telemetry = telemetry;
    if (config.upstream !== undefined) {
      const local = new HttpUpstream(
        { ...config, upstream: config.upstream },
        {
          onProbe: (result) => telemetry.probeFinished(result),
          peerForwards: config.sessionRouting,
          ...(secrets
            ? {
                injectedHeaders: () => secrets.upstreamHeaders,
                dropHeaders: ownedHeaders(secrets, config.sessionRouting),
              }
            : {}),
        },
      );
      if (config.sessionRouting && secrets) {
        this.#routing = createSessionRouting(local, config, {
          secrets,
          registry: this.metrics.registry,
          logger: this.logger,
        });
        this.#upstream = this.#routing.upstream;
      } else this.#upstream = local;
    } else {
      const stdio = createStdioUpstream(
        { ...config, stdioCommandLine: config.stdioCommandLine ?? [] },
        {
          logger: this.logger,
          registry: this.metrics.registry,
          secretEnv: () => secrets?.childEnv.values ?? {},
          secretEnvGeneration: () => secrets?.childEnv.generation ?? 0,
        },
      );
      this.#upstream = stdio.upstream;
      this.#killChildren = stdio.killChildrenNow;
    }
    this.#drain = new DrainController(
      { delayMs: config.drainDelayMs, timeoutMs: config.drainTimeoutMs },
      (action) => this.#perform(action),
    );
    // While serving the count is only read; once a drain began, every change may end it.
    this.#inFlight = new InFlight((count) => {
      if (this.#drain.state.phase !== "serving") this.#drain.dispatch({ type: "in-flight", count });
    });
    const extraChecks = [...(options.readinessChecks ?? []), ...(secrets ? [() => secrets.check()] : [])];
    const upstream = this.#upstream;
    const phase = () => this.#drain.state.phase;
    this.#frontDoor = new FrontDoor(config, {
      upstream,
      telemetry,
      inFlight: this.#inFlight,
      apiKeys: secrets?.authRequired ? secrets : undefined,
      phase,
      ownEndpoints: new OwnEndpoints({
        phase,
        registry: this.metrics.registry,
        checks: () => Promise.all([upstream.check(), ...extraChecks.map((check) => check())]),
      }),
    });
    this.#finished = new Promise((resolve) => {
      this.#resolveFinished = resolve;
    });
  }

  /** Starts listening; resolves with the sidecar's own base URL. Once closed, it throws. */
  listen(): Promise<URL> {
    if (this.#drain.state.phase !== "serving")
      return Promise.reject(new SidecarClosedError("the sidecar was closed; create a new one"));
    this.#listening ??= this.#listen();
    return this.#listening;
  }

  async #listen(): Promise<URL> {
    await this.#routing?.prepare();
    const { url, listen } = await this.#frontDoor.listen();
    const advertised = this.#routing?.listening(Number(url.port));
    this.#advertised = advertised;
    this.#address = url;
    this.secrets?.start();
    this.logger.info(
      {
        url: url.href,
        listen,
        upstream: this.#upstream.target,
        version: VERSION,
        ...(advertised === undefined ? {} : { advertised }),
      },
      "sidecar listening",
    );
    // Lifecycle lines go out at once (request lines are buffered; see telemetry/logger.ts).
    this.logger.flush();
    return url;
  }

  /** With --session-routing: the URL other tasks reach this sidecar at, once it listens. */
  get advertisedUrl(): string | undefined {
    return this.#advertised;
  }

  get url(): URL | undefined {
    return this.#address;
  }

  /** Where /metrics is served (the main URL unless --metrics-port is set). */
  get metricsUrl(): URL | undefined {
    const port = this.#frontDoor.metricsPort;
    if (port !== undefined) return new URL(this.config.metricsPath, `http://127.0.0.1:${port}`);
    return this.#address ? new URL(this.config.metricsPath, this.#address) : undefined;
  }

  get phase(): DrainPhase {
    return this.#drain.state.phase;
  }

  /** Requests in flight: forwarded exchanges and the sidecar's own answers still being written. */
  get inFlight(): number {
    return this.#inFlight.size;
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
          inFlight: this.#inFlight.size,
          drainDelayMs: this.config.drainDelayMs,
          drainTimeoutMs: this.config.drainTimeoutMs,
        },
        "drain started",
      );
      this.logger.flush();
      this.#drain.dispatch({ type: "in-flight", count: this.#inFlight.size });
      this.#drain.dispatch({ type: "stop-requested" });
    }
    return this.#finished;
  }

  /** Stops at once, cutting whatever is in flight, as on a second SIGTERM. */
  destroy(): Promise<DrainOutcome> {
    if (this.#drain.state.phase === "serving") this.#drainStartedAt = Date.now();
    this.#drain.dispatch({ type: "in-flight", count: this.#inFlight.size });
    this.#drain.dispatch({ type: "force-requested" });
    return this.#finished;
  }

  /**
   * SIGKILLs every process the upstream started (stdio children, as process groups), at once and
   * synchronously: for the process's `exit` and a fatal error, when no drain can run any more.
   */
  killChildrenNow(): void {
    this.#killChildren();
  }

  /** Resolves when the sidecar has stopped (by close(), destroy() or the drain timeout). */
  get finished(): Promise<DrainOutcome> {
    return this.#finished;
  }

  // ---- drain shell: applies the state machine's actions ----

  #perform(action: SocketAction): void {
    this.#telemetry.drainPhase(this.#drain.state.phase);
    switch (action.type) {
      case "fail-readiness":
        // Nothing to do: /ready reads the phase. Kept as an action so the order is explicit and tested.
        return;
      case "stop-accepting":
        this.#frontDoor.stopAccepting();
        return;
      case "close-endless-streams":
        this.#inFlight.closeEndless(this.config.drainRetryAfterMs);
        return;
      case "cut-in-flight":
        this.#inFlight.cut((exchange) => this.#telemetry.exchangeCut(exchange.describe()));
        return;
      case "finish":
        this.#finish(action.outcome);
        return;
    }
  }

  #finish(outcome: DrainOutcome): void {
    this.#frontDoor.close();
    this.secrets?.stop();
    void this.#agentClient?.close().catch(() => {});
    // Stopped only once the upstream has let go of what it holds: a stdio upstream's children are
    // stopped (as process groups) before the process may exit, so none is left behind.
    void this.#upstream
      .close()
      .catch(() => {})
      .then(() => {
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
      });
  }
}

/**
 * Lower-case request headers the sidecar consumes (its API key, the hop header of session routing)
 * or sets itself (injected secrets).
 */
function ownedHeaders(secrets: SecretsRuntime, sessionRouting: boolean): ReadonlySet<string> {
  const owned = new Set(secrets.injectedHeaderNames);
  if (secrets.authRequired) owned.add("authorization");
  if (sessionRouting) owned.add(FORWARDED_BY_HEADER);
  return owned;
}

export function createSidecar(config: SidecarConfig, options?: SidecarOptions): Sidecar {
  return new Sidecar(config, options);
}
