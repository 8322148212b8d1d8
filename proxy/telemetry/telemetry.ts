// Everything the sidecar reports about requests, in one place: metrics and log lines, from the
// facts the front door and the upstreams hand over (an ExchangeSummary per finished exchange, a few
// events while one runs). Nothing here reads a request, a response or an exchange.

import { randomUUID } from "node:crypto";
import { pathOf } from "../http/headers.ts";
import type { DrainPhase } from "../lifecycle/drain.ts";
import type { CheckResult } from "../lifecycle/readiness.ts";
import type { ExchangeKind, StreamKind } from "../protocol/outcome.ts";
import { accessLogLine } from "./access-log.ts";
import type { ExchangeSummary } from "./exchange-summary.ts";
import type { Logger } from "./logger.ts";
import type { RouteClass, SidecarMetrics } from "./metrics.ts";

/** What the drain logs of an exchange it cuts. */
export interface CutExchange {
  readonly id: string;
  readonly method: string;
  readonly target: string;
  readonly mcpMethod: string | undefined;
  readonly mcpName: string | undefined;
  readonly ageMs: number;
  readonly kind: ExchangeKind;
}

export class Telemetry {
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
  #phase: DrainPhase = "serving";

  constructor(metrics: SidecarMetrics, logger: Logger) {
    this.metrics = metrics;
    this.logger = logger;
  }

  // ---- exchanges (forwarded, or refused by the front door) ----

  exchangeStarted(): void {
    this.metrics.httpInFlight.inc();
  }

  streamOpened(kind: StreamKind): void {
    this.metrics.openStreams.inc({ kind });
  }

  keepaliveSent(): void {
    this.metrics.keepalives.inc();
  }

  exchangeFinished(summary: ExchangeSummary, duringDrain: boolean): void {
    const metrics = this.metrics;
    const seconds = summary.durationMs / 1000;
    metrics.httpInFlight.dec();
    // No status: the client left before any answer began; counted as Node's default status, 200.
    metrics.httpRequests.inc({ route: summary.route, status: String(summary.status || 200) });
    metrics.httpDuration.observe({ route: summary.route }, seconds);
    if (summary.streamKind !== undefined) metrics.openStreams.dec({ kind: summary.streamKind });
    if (summary.upstreamErrorKind !== undefined)
      metrics.upstreamErrors.inc({ kind: summary.upstreamErrorKind });
    if (summary.mcpMethod !== undefined && summary.isRequest && summary.callOutcome !== undefined) {
      const method = metrics.method(summary.mcpMethod);
      const tool = metrics.tool(summary.mcpMethod, summary.mcpName);
      metrics.mcpCalls.inc({ method, tool, outcome: summary.callOutcome });
      metrics.mcpDuration.observe({ method, tool }, seconds);
    }
    if (duringDrain) metrics.drainRequests.inc({ result: summary.outcome === "cut" ? "cut" : "completed" });
    if (this.logger.isLevelEnabled("info")) this.logger.info(accessLogLine(summary), "request");
  }

  // ---- the sidecar's own endpoints and refusals ----

  ownAnswerFinished(route: RouteClass, status: number, seconds: number): void {
    this.metrics.httpRequests.inc({ route, status: String(status) });
    this.metrics.httpDuration.observe({ route }, seconds);
  }

  refusedWhileDraining(method: string | undefined, target: string | undefined): void {
    this.logger.info(
      { reqId: randomUUID(), method, path: pathOf(target), status: 503, outcome: "rejected_draining" },
      "request",
    );
  }

  refusedUpgrade(method: string | undefined, target: string | undefined, status: number): void {
    this.logger.info({ method, path: pathOf(target), status }, "request");
  }

  // ---- readiness and the drain ----

  probeFinished(result: CheckResult): void {
    this.metrics.probes.inc({ result: result.ok ? "ok" : "failed" });
    if (result.latencyMs !== undefined) this.metrics.probeDuration.observe(result.latencyMs / 1000);
  }

  /** Keeps the drain metrics in step with the drain's phase. */
  drainPhase(phase: DrainPhase): void {
    if (phase === this.#phase) return;
    if (this.#phase === "serving") this.metrics.drainStarted.set(Date.now() / 1000);
    if (phase === "stopped") this.metrics.drainFinished.set(Date.now() / 1000);
    this.#phase = phase;
    this.metrics.setDrainPhase(phase);
  }

  exchangeCut(cut: CutExchange): void {
    this.logger.warn(
      {
        reqId: cut.id,
        method: cut.method,
        path: pathOf(cut.target),
        mcpMethod: cut.mcpMethod,
        tool: cut.mcpMethod === "tools/call" ? cut.mcpName : undefined,
        ageMs: Math.round(cut.ageMs),
        kind: cut.kind,
      },
      "request cut by drain",
    );
  }
}
