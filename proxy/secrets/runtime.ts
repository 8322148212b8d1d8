// Secrets at run time: polls the agent, keeps each secret's versions, and turns them into the three
// deliveries (the API key clients must present, headers injected upstream, files). The schedule is
// driven through an injected Scheduler, so outage and rotation timing is tested on a manual clock.
//
// Why poll without refreshNow: the agent's cache answers routine polls for free; refreshNow costs a
// billed Secrets Manager call each time. A rotation therefore shows within --refresh-interval plus
// the agent's ttl_seconds, except for a client that already presents the new API key: that waits
// for an on-demand refreshNow (on-demand.ts: at most one per second per secret, however many
// unknown keys arrive), so it is accepted within about a second.

import { timingSafeEqual } from "node:crypto";
import type { CheckResult } from "../lifecycle/readiness.ts";
import type { SessionKey } from "../sessions/session-token.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { AgentClient, AgentResult } from "./agent-client.ts";
import { computeDeliveries, digest } from "./deliveries.ts";
import { OnDemandRefresh } from "./on-demand.ts";
import { SecretFiles } from "./secret-files.ts";
import { TrackedSecret, versionLabel } from "./secret-state.ts";
import type { EnvDelivery, FileDelivery, HeaderDelivery, SecretRef } from "./spec.ts";

export interface Scheduler {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  random: Math.random,
};

export interface SecretsSettings {
  readonly refreshIntervalMs: number;
  readonly maxStalenessMs: number;
  readonly authSecret: SecretRef | undefined;
  readonly injectHeaders: readonly HeaderDelivery[];
  readonly secretFiles: readonly FileDelivery[];
  readonly secretEnv?: readonly EnvDelivery[];
  /** --session-secret: the session token keys (current and previous open tokens; current seals). */
  readonly sessionSecret?: SecretRef | undefined;
}

export const SECRETS_CHECK_NAME = "secrets";
const STARTUP_BACKOFF_BASE_MS = 200;
const STARTUP_BACKOFF_CAP_MS = 10_000;

export type AuthVerdict = "ok" | "missing" | "unknown";

export class SecretsRuntime {
  readonly #client: AgentClient;
  readonly #settings: SecretsSettings;
  readonly #scheduler: Scheduler;
  readonly #logger: Logger;
  readonly tracked = new Map<string, TrackedSecret>();
  #timer: unknown;
  #stopped = false;
  #cycle: Promise<void> | undefined;
  /** On-demand refreshes of the --auth-secret, when there is one. */
  readonly #onDemand: OnDemandRefresh | undefined;
  /** On-demand refreshes of the --session-secret, for tokens sealed with a key not polled yet. */
  readonly #sessionOnDemand: OnDemandRefresh | undefined;
  /** Session token keys: the current version's first. Replaced whole, never edited in place. */
  #sessionKeys: readonly SessionKey[] = [];
  /** Digests of every API key a client may present right now. */
  #acceptedKeys: Buffer[] = [];
  /** [name, value, ...] set on every upstream request: replaced whole, never edited in place. */
  #headers: readonly string[] = [];
  /** NAME -> value for each --secret-env: replaced whole on a change, never edited in place. */
  #env: Readonly<Record<string, string>> = {};
  /** Bumped whenever an --secret-env value changes: children started before it have old values. */
  #envGeneration = 0;
  #problems: string[] = [];
  #startupAttempt = 0;
  /** Orders fetches by start (see TrackedSecret.applyCurrent). */
  #fetchSeq = 0;
  readonly #files: SecretFiles;
  /** Deliveries run one at a time: two would race on the same temp file. */
  #delivering: Promise<void> = Promise.resolve();

  constructor(
    client: AgentClient,
    settings: SecretsSettings,
    logger: Logger,
    scheduler: Scheduler = realScheduler,
  ) {
    this.#client = client;
    this.#settings = settings;
    this.#logger = logger;
    this.#scheduler = scheduler;
    this.#files = new SecretFiles(logger);
    const track = (ref: SecretRef, followsPrevious: boolean) => {
      const existing = this.tracked.get(ref.secretId);
      if (existing && (existing.followsPrevious || !followsPrevious)) return;
      this.tracked.set(ref.secretId, new TrackedSecret(ref.secretId, followsPrevious));
    };
    if (settings.authSecret) track(settings.authSecret, true);
    if (settings.sessionSecret) track(settings.sessionSecret, true);
    for (const delivery of settings.injectHeaders) track(delivery.ref, false);
    for (const delivery of settings.secretFiles) track(delivery.ref, false);
    for (const delivery of settings.secretEnv ?? []) track(delivery.ref, false);
    const auth = settings.authSecret && this.tracked.get(settings.authSecret.secretId);
    if (auth) {
      this.#onDemand = new OnDemandRefresh(() => {
        auth.lastOnDemandAt = this.#scheduler.now();
        auth.onDemandCount++;
        return this.#refresh(auth, true).then((changed) => (changed ? this.#deliver() : undefined));
      }, scheduler);
    }
    const session = settings.sessionSecret && this.tracked.get(settings.sessionSecret.secretId);
    if (session) {
      this.#sessionOnDemand = new OnDemandRefresh(() => {
        session.onDemandCount++;
        return this.#refresh(session, true).then((changed) => (changed ? this.#deliver() : undefined));
      }, scheduler);
    }
  }

  /** The session token keys: [0] seals new tokens; every one opens them. Empty until loaded. */
  get sessionKeys(): readonly SessionKey[] {
    return this.#sessionKeys;
  }

  /**
   * A token sealed with a key id none of sessionKeys has (a rotation another task saw first): waits,
   * bounded as for API keys (on-demand.ts), for a refreshNow; true when the key is then known.
   */
  refreshSessionKeysOnDemand(keyId: string): Promise<boolean> {
    if (this.#sessionOnDemand === undefined) return Promise.resolve(false);
    return this.#sessionOnDemand.wait(() =>
      this.#sessionKeys.some((key) => key.id.toString("hex") === keyId),
    );
  }

  get configured(): boolean {
    return this.tracked.size > 0;
  }

  get authRequired(): boolean {
    return this.#settings.authSecret !== undefined;
  }

  /** Header names the sidecar sets itself: a client's own values for them are dropped. */
  get injectedHeaderNames(): readonly string[] {
    return this.#settings.injectHeaders.map((delivery) => delivery.header.toLowerCase());
  }

  /** The current --secret-env values, for a child about to start; and their generation. */
  get childEnv(): { readonly values: Readonly<Record<string, string>>; readonly generation: number } {
    return { values: this.#env, generation: this.#envGeneration };
  }

  /** The current header pairs; take the array once per request. */
  get upstreamHeaders(): readonly string[] {
    return this.#headers;
  }

  /** Starts polling now; the first cycle retries with backoff until every secret is loaded. */
  start(): void {
    if (!this.configured) return;
    this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#onDemand?.stop();
    this.#sessionOnDemand?.stop();
    if (this.#timer !== undefined) this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Resolves when the poll cycle under way (if any) is done: for tests on a manual clock. */
  async settled(): Promise<void> {
    while (this.#cycle) await this.#cycle;
    await this.#onDemand?.settled();
    await this.#sessionOnDemand?.settled();
  }

  // ---- polling ----

  #run(): void {
    if (this.#stopped) return;
    const cycle = this.#pollAll().finally(() => {
      if (this.#cycle === cycle) this.#cycle = undefined;
      this.#schedule();
    });
    this.#cycle = cycle;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const interval = this.#settings.refreshIntervalMs * (0.9 + 0.2 * this.#scheduler.random());
    // Until every secret is loaded, retry sooner; once loaded, an outage changes nothing (the last
    // good values are served), so the routine interval goes on and the agent is not hammered.
    const starting = [...this.tracked.values()].some((secret) => !secret.loaded);
    let delay = interval;
    if (starting) {
      // Capped exponential backoff with full jitter; never slower than the routine interval.
      const cap = Math.min(STARTUP_BACKOFF_CAP_MS, this.#settings.refreshIntervalMs);
      const ceiling = Math.min(cap, STARTUP_BACKOFF_BASE_MS * 2 ** this.#startupAttempt);
      this.#startupAttempt++;
      delay = Math.min(interval, ceiling * (0.5 + 0.5 * this.#scheduler.random()));
    } else {
      this.#startupAttempt = 0;
    }
    this.#timer = this.#scheduler.setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, delay);
  }

  async #pollAll(): Promise<void> {
    await Promise.all([...this.tracked.values()].map((secret) => this.#refresh(secret, false)));
    await this.#deliver();
  }

  async #refresh(secret: TrackedSecret, refreshNow: boolean): Promise<boolean> {
    const seq = ++this.#fetchSeq;
    const [current, previous] = await Promise.all([
      this.#client.get({ secretId: secret.secretId, refreshNow }),
      secret.followsPrevious
        ? this.#client.get({ secretId: secret.secretId, versionStage: "AWSPREVIOUS", refreshNow })
        : undefined,
    ]);
    const now = this.#scheduler.now();
    let changed = false;
    if (current.ok) {
      const wasLoaded = secret.loaded;
      const recovered = secret.consecutiveFailures > 0;
      if (secret.applyCurrent(current.secret, now, seq)) {
        changed = true;
        this.#logger.info(
          { secret: secret.secretId, version: versionLabel(current.secret.versionId), onDemand: refreshNow },
          wasLoaded ? "secret rotated" : "secret loaded",
        );
      } else if (recovered) {
        this.#logger.info({ secret: secret.secretId }, "secret refresh recovered");
      }
    } else {
      this.#recordFailure(secret, current);
    }
    if (previous !== undefined) {
      // No AWSPREVIOUS yet (a secret never rotated) is a normal answer, not a failure.
      if (previous.ok) changed = secret.applyPrevious(previous.secret, now) || changed;
      else if (previous.kind === "not_found") changed = secret.applyPrevious(undefined, now) || changed;
      else secret.recordFailure(previous.kind, previous.detail, now, "previous");
    }
    return changed;
  }

  #recordFailure(secret: TrackedSecret, result: Extract<AgentResult, { ok: false }>): void {
    const first = secret.consecutiveFailures === 0;
    secret.recordFailure(result.kind, result.detail, this.#scheduler.now());
    // One line when a failure starts, then one every tenth attempt: an outage should not flood logs.
    if (first || secret.consecutiveFailures % 10 === 0) {
      this.#logger.warn(
        {
          secret: secret.secretId,
          kind: result.kind,
          detail: result.detail,
          consecutiveFailures: secret.consecutiveFailures,
          servingLastGood: secret.loaded,
        },
        "secret refresh failed",
      );
    }
  }

  // ---- deliveries ----

  #deliver(): Promise<void> {
    const next = this.#delivering.then(() => this.#deliverNow());
    this.#delivering = next.catch(() => {});
    return next;
  }

  async #deliverNow(): Promise<void> {
    const { acceptedKeys, sessionKeys, headers, env, problems } = computeDeliveries(
      this.#settings,
      (secretId) => this.tracked.get(secretId),
    );
    if (this.#settings.authSecret) this.#acceptedKeys = acceptedKeys;
    if (this.#settings.sessionSecret) this.#sessionKeys = sessionKeys;
    this.#headers = headers;
    if (Object.entries(env).some(([name, value]) => this.#env[name] !== value)) this.#envGeneration++;
    this.#env = Object.freeze(env);
    this.#problems = problems;
    await Promise.all(
      this.#settings.secretFiles.map((delivery) =>
        this.#files.write(delivery, this.tracked.get(delivery.ref.secretId)?.current),
      ),
    );
  }

  // ---- auth ----

  /** Constant-time over every accepted key: the comparison never stops early on a match. */
  checkAuthorization(header: string | undefined): AuthVerdict {
    if (header === undefined) return "missing";
    const match = /^Bearer +(.+)$/i.exec(header.trim());
    if (!match) return "missing";
    const presented = digest(match[1] as string);
    let ok = false;
    for (const key of this.#acceptedKeys) ok = timingSafeEqual(presented, key) || ok;
    return ok ? "ok" : "unknown";
  }

  /**
   * A key no known version matches: waits (bounded) for an on-demand refreshNow of both stages and
   * resolves true when the key is then accepted. See on-demand.ts for the bounds.
   */
  refreshAuthOnDemand(header: string | undefined): Promise<boolean> {
    if (this.#onDemand === undefined) return Promise.resolve(false);
    return this.#onDemand.wait(() => this.checkAuthorization(header) === "ok");
  }

  // ---- readiness ----

  /** Ready when every secret is loaded and usable, and none is older than --max-staleness. */
  check(): CheckResult {
    const reasons: string[] = [];
    const now = this.#scheduler.now();
    for (const secret of this.tracked.values()) {
      if (!secret.loaded) {
        const why = secret.lastFailure
          ? `${secret.lastFailure.kind}: ${secret.lastFailure.detail}`
          : "first fetch under way";
        reasons.push(`${secret.secretId} not loaded yet (${why})`);
      } else if (
        this.#settings.maxStalenessMs > 0 &&
        now - (secret.lastSuccessAt ?? 0) > this.#settings.maxStalenessMs
      ) {
        reasons.push(
          `${secret.secretId} not refreshed for ${Math.round((now - (secret.lastSuccessAt ?? 0)) / 1000)} s (--max-staleness)`,
        );
      }
    }
    reasons.push(...this.#problems, ...this.#files.problems);
    if (reasons.length === 0) return { name: SECRETS_CHECK_NAME, ok: true };
    return { name: SECRETS_CHECK_NAME, ok: false, reason: reasons.join("; ") };
  }
}
