// The sidecar's own endpoints: /health (liveness: the process runs), /ready (readiness: serving,
// and the upstream and every dependency check pass), /metrics. GET and HEAD only.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "../deps.ts";
import { SIDECAR_ERRORS } from "../errors.ts";
import { writeSidecarError } from "../http/answers.ts";
import type { DrainPhase } from "../lifecycle/drain.ts";
import { type CheckResult, evaluateReadiness } from "../lifecycle/readiness.ts";

export interface OwnEndpointsParts {
  readonly phase: () => DrainPhase;
  /** Every readiness check (the upstream's first); only asked while serving. */
  readonly checks: () => Promise<readonly CheckResult[]>;
  readonly registry: Registry;
}

/** A JSON answer that is never cached; a HEAD gets the head only. */
export function answerJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  // A body written to a HEAD answer makes Node close the connection.
  res.end(res.req.method === "HEAD" ? undefined : text);
}

export class OwnEndpoints {
  readonly #parts: OwnEndpointsParts;
  readonly #startedAt = Date.now();

  constructor(parts: OwnEndpointsParts) {
    this.#parts = parts;
  }

  health(req: IncomingMessage, res: ServerResponse): void {
    if (!this.#allowed(req, res)) return;
    const phase = this.#parts.phase();
    answerJson(res, 200, {
      status: "ok",
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      state: phase === "delaying" ? "draining" : phase,
    });
  }

  async ready(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#allowed(req, res)) return;
    // While draining, the answer is already known: do not touch the upstream.
    const checks = this.#parts.phase() === "serving" ? await this.#parts.checks() : [];
    const report = evaluateReadiness(this.#parts.phase(), checks);
    if (res.destroyed) return;
    answerJson(res, report.ready ? 200 : 503, {
      status: report.ready ? "ready" : "not_ready",
      state: report.state,
      reasons: report.reasons,
      checks: report.checks,
    });
  }

  async metrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#allowed(req, res)) return;
    const registry = this.#parts.registry;
    const text = await registry.metrics();
    if (res.destroyed) return;
    res.writeHead(200, {
      "content-type": registry.contentType,
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : text);
  }

  #allowed(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method === "GET" || req.method === "HEAD") return true;
    res.setHeader("allow", "GET, HEAD");
    writeSidecarError(res, SIDECAR_ERRORS.methodNotAllowed, `${req.method} is not allowed on ${req.url}`);
    return false;
  }
}
