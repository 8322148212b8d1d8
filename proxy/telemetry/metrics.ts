// Prometheus metrics that know MCP: which method and tool each request is, how each call ended, what
// is in flight when a drain starts, how old each secret is. prom-client (the well-kept Node client)
// does the exposition; label values are bounded here so no client can blow up the series count.

import { Counter, Gauge, Histogram, Registry } from "../deps.ts";
import type { DrainPhase } from "../lifecycle/drain.ts";
import type { SecretsRuntime } from "../secrets/runtime.ts";
import { BoundedLabel, FastCounter, FastGauge, FastHistogram } from "./fast-metrics.ts";
import { collectProcessMetrics } from "./process-metrics.ts";
import { registerSecretMetrics } from "./secret-metrics.ts";

/** Where a request went: the sidecar's own endpoints, or forwarded. */
export type RouteClass = "forward" | "health" | "ready" | "metrics" | "rejected";

// Seconds. Tool calls range from milliseconds to minutes.
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The methods of both MCP generations; any other method string counts against the cap. */
const KNOWN_METHODS = [
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/read",
  "resources/templates/list",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "server/discover",
  "subscriptions/listen",
  "notifications/initialized",
  "notifications/cancelled",
  "notifications/progress",
  "notifications/roots/list_changed",
];

export interface MetricsOptions {
  /** Distinct tool names kept as labels; the rest fold into "other". */
  readonly maxTools: number;
  /** Process metrics (CPU, RSS, event loop lag) too. */
  readonly processMetrics: boolean;
}

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly #tools: BoundedLabel;
  readonly #methods = new BoundedLabel(20, KNOWN_METHODS);

  readonly httpRequests: FastCounter<"route" | "status">;
  readonly httpInFlight: FastGauge;
  readonly httpDuration: FastHistogram<"route">;
  readonly mcpCalls: FastCounter<"method" | "tool" | "outcome">;
  readonly mcpDuration: FastHistogram<"method" | "tool">;
  readonly openStreams: FastGauge<"kind">;
  readonly keepalives: FastCounter;
  readonly drainState: Gauge<"state">;
  readonly drainStarted: Gauge;
  readonly drainFinished: Gauge;
  readonly drainRequests: Counter<"result">;
  readonly upstreamErrors: FastCounter<"kind">;
  readonly probes: Counter<"result">;
  readonly probeDuration: Histogram;

  constructor(options: MetricsOptions, secrets?: SecretsRuntime) {
    this.#tools = new BoundedLabel(options.maxTools);
    const registers = [this.registry];
    if (options.processMetrics) collectProcessMetrics(this.registry, "mcp_sidecar_");

    this.httpRequests = new FastCounter(
      this.registry,
      "mcp_sidecar_http_requests_total",
      "HTTP requests answered, by route class (forward, health, ready, metrics, rejected) and status code.",
      ["route", "status"],
    );
    this.httpInFlight = new FastGauge(
      this.registry,
      "mcp_sidecar_http_in_flight",
      "Forwarded requests in flight (open event streams included).",
    );
    this.httpDuration = new FastHistogram(
      this.registry,
      "mcp_sidecar_http_request_duration_seconds",
      "Time from request to the end of the response (event streams included), by route class.",
      ["route"],
      HTTP_BUCKETS,
    );
    this.mcpCalls = new FastCounter(
      this.registry,
      "mcp_sidecar_mcp_calls_total",
      "MCP requests (JSON-RPC requests, not notifications) by method, tool (tools/call) and outcome: result, tool_error (a result with isError), jsonrpc_error, transport_error, cancelled.",
      ["method", "tool", "outcome"],
    );
    this.mcpDuration = new FastHistogram(
      this.registry,
      "mcp_sidecar_mcp_call_duration_seconds",
      "Duration of MCP requests by method and tool.",
      ["method", "tool"],
      CALL_BUCKETS,
    );
    this.openStreams = new FastGauge(
      this.registry,
      "mcp_sidecar_open_event_streams",
      "Event streams open through the sidecar: post_response, get_standalone (2025-11-25), legacy_sse, listen (2026-07-28).",
      ["kind"],
    );
    for (const kind of ["post_response", "get_standalone", "legacy_sse", "listen"])
      this.openStreams.set({ kind }, 0);
    this.keepalives = new FastCounter(
      this.registry,
      "mcp_sidecar_sse_keepalives_total",
      "SSE keepalive comments written on silent streams.",
    );
    this.drainState = new Gauge({
      name: "mcp_sidecar_drain_state",
      help: "1 for the current drain phase (serving, delaying, draining, stopped), 0 for the others.",
      labelNames: ["state"],
      registers,
    });
    this.setDrainPhase("serving");
    this.drainStarted = new Gauge({
      name: "mcp_sidecar_drain_started_timestamp_seconds",
      help: "When the drain started (0: not started).",
      registers,
    });
    this.drainFinished = new Gauge({
      name: "mcp_sidecar_drain_finished_timestamp_seconds",
      help: "When the drain finished (0: not finished).",
      registers,
    });
    this.drainRequests = new Counter({
      name: "mcp_sidecar_drain_requests_total",
      help: "Requests that were in flight during a drain, by how they ended: completed or cut.",
      labelNames: ["result"],
      registers,
    });
    this.upstreamErrors = new FastCounter(
      this.registry,
      "mcp_sidecar_upstream_errors_total",
      "Upstream failures by kind: unreachable, connect_timeout, headers_timeout, reset_mid_response.",
      ["kind"],
    );
    this.probes = new Counter({
      name: "mcp_sidecar_readiness_probes_total",
      help: "Upstream readiness probes by result: ok, failed.",
      labelNames: ["result"],
      registers,
    });
    this.probeDuration = new Histogram({
      name: "mcp_sidecar_readiness_probe_duration_seconds",
      help: "Latency of upstream readiness probes.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });

    if (secrets?.configured) registerSecretMetrics(secrets, this.registry);
  }

  /** A method label, bounded. */
  method(raw: string | undefined): string {
    return this.#methods.value(raw);
  }

  /** A tool label for tools/call, bounded; "" for other methods. */
  tool(method: string | undefined, raw: string | undefined): string {
    return method === "tools/call" ? this.#tools.value(raw) : "";
  }

  setDrainPhase(phase: DrainPhase): void {
    for (const state of ["serving", "delaying", "draining", "stopped"])
      this.drainState.set({ state }, state === phase ? 1 : 0);
  }
}
