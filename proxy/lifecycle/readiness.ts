// Readiness as a pure evaluation of named checks, and a single-flight cache so that a load balancer
// and ECS polling `/ready` do not turn into load on the upstream. No I/O here: checks are functions
// handed in by the shell (each upstream's own check, e.g. upstream/http/probe.ts; the secrets'
// check in secrets/runtime.ts).

import type { DrainPhase } from "./drain.ts";

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** Why it failed, in words an operator can act on; never a secret value. */
  readonly reason?: string;
  readonly latencyMs?: number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly state: DrainPhase;
  readonly reasons: readonly string[];
  readonly checks: readonly CheckResult[];
}

export function evaluateReadiness(phase: DrainPhase, checks: readonly CheckResult[]): ReadinessReport {
  const reasons: string[] = [];
  if (phase !== "serving") reasons.push(`sidecar is ${phase === "stopped" ? "stopped" : "draining"}`);
  for (const check of checks) if (!check.ok) reasons.push(`${check.name}: ${check.reason ?? "failed"}`);
  return { ready: reasons.length === 0, state: phase === "delaying" ? "draining" : phase, reasons, checks };
}

/**
 * Runs `check` at most once per `ttlMs`; concurrent callers share the run in progress. A failed
 * result is cached like a good one (a down upstream should not be hammered either), but
 * `invalidate()` lets the forwarding path report a refused connection at once.
 */
export class CachedCheck {
  readonly #run: () => Promise<CheckResult>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #result: CheckResult | undefined;
  #at = 0;
  #pending: Promise<CheckResult> | undefined;

  constructor(run: () => Promise<CheckResult>, ttlMs: number, now: () => number = Date.now) {
    this.#run = run;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(): Promise<CheckResult> {
    if (this.#result !== undefined && this.#now() - this.#at < this.#ttlMs)
      return Promise.resolve(this.#result);
    if (this.#pending) return this.#pending;
    const pending = this.#run().then((result) => {
      if (this.#pending === pending) {
        this.#result = result;
        this.#at = this.#now();
        this.#pending = undefined;
      }
      return result;
    });
    this.#pending = pending;
    return pending;
  }

  /** The last result, if any, without running the check. */
  peek(): CheckResult | undefined {
    return this.#result;
  }

  invalidate(): void {
    this.#result = undefined;
    this.#pending = undefined;
  }
}
