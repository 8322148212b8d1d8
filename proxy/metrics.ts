// Prometheus metrics that know MCP: which method and tool each request is, how each call ended, what
// is in flight when a drain starts, how old each secret is. prom-client (the well-kept Node client)
// does the exposition; label values are bounded here so no client can blow up the series count.

import { Counter, Gauge, Histogram, Registry } from "./deps.ts";
import type { DrainPhase } from "./drain.ts";
import { collectProcessMetrics } from "./process-metrics.ts";
import type { SecretsRuntime } from "./secrets/runtime.ts";
import { versionLabel } from "./secrets/secret-state.ts";

/** Where a request went: the sidecar's own endpoints, or forwarded. */
export type RouteClass = "forward" | "health" | "ready" | "metrics" | "rejected";

// Seconds. Tool calls range from milliseconds to minutes.
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const OTHER = "other";

/**
 * Keeps a label's distinct values bounded: the first `cap` values seen are kept as they are, the
 * rest fold into "other". Values are also cut to 64 characters.
 */
export class BoundedLabel {
  readonly #cap: number;
  readonly #seen = new Set<string>();

  constructor(cap: number, preset: readonly string[] = []) {
    this.#cap = cap + preset.length;
    for (const value of preset) this.#seen.add(value);
  }

  get size(): number {
    return this.#seen.size;
  }

  value(raw: string | undefined): string {
    if (raw === undefined || raw === "") return "";
    const value = raw.length > 64 ? raw.slice(0, 64) : raw;
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.#cap) return OTHER;
    this.#seen.add(value);
    return value;
  }
}

// ---- hot-path metric primitives ----
//
// prom-client validates and hashes the labels on every inc() and observe() (measured: about a
// third of the sidecar's CPU per forwarded request). The metrics updated on every request are
// therefore these small classes: a child per label set, found by a joined key, updated with plain
// arithmetic. prom-client still does the exposition: each class implements the metric interface
// its Registry reads (name, help, type, get()).

type Labels<L extends string> = Partial<Record<L, string>>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

abstract class FastMetric<L extends string> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: "counter" | "gauge" | "histogram";
  readonly aggregator = "sum";
  protected readonly labelNames: readonly L[];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[] = []) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    registry.registerMetric(this as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  protected key(labels: Labels<L> | undefined): string {
    if (this.labelNames.length === 0 || labels === undefined) return "";
    let key = "";
    for (const name of this.labelNames) key += `${labels[name] ?? ""}\u0000`;
    return key;
  }

  protected labelObject(labels: Labels<L> | undefined): Record<string, string> {
    const object: Record<string, string> = {};
    for (const name of this.labelNames) object[name] = labels?.[name] ?? "";
    return object;
  }

  abstract get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string };
}

/** A counter (or, with set/dec, a gauge) per label set. */
class FastCounter<L extends string = never> extends FastMetric<L> {
  readonly type: "counter" | "gauge" = "counter";
  readonly #series = new Map<string, { labels: Record<string, string>; value: number }>();

  #series_(labels: Labels<L> | undefined) {
    const key = this.key(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels: this.labelObject(labels), value: 0 };
      this.#series.set(key, series);
    }
    return series;
  }

  inc(labels?: Labels<L>, by = 1): void {
    this.#series_(labels).value += by;
  }

  /** The value of one label set (0 when never touched). */
  value(labels?: Labels<L>): number {
    return this.#series.get(this.key(labels))?.value ?? 0;
  }

  get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.#series.values()].map((s) => ({ labels: s.labels, value: s.value })),
    };
  }

  protected touch(labels: Labels<L> | undefined) {
    return this.#series_(labels);
  }
}

class FastGauge<L extends string = never> extends FastCounter<L> {
  override readonly type = "gauge" as const;

  dec(labels?: Labels<L>, by = 1): void {
    this.touch(labels).value -= by;
  }

  set(labels: Labels<L> | undefined, value: number): void {
    this.touch(labels).value = value;
  }
}

class FastHistogram<L extends string = never> extends FastMetric<L> {
  readonly type = "histogram" as const;
  readonly #bounds: readonly number[];
  readonly #series = new Map<
    string,
    { labels: Record<string, string>; counts: number[]; sum: number; count: number }
  >();

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly L[],
    bounds: readonly number[],
  ) {
    super(registry, name, help, labelNames);
    this.#bounds = bounds;
  }

  observe(labels: Labels<L> | undefined, value: number): void {
    const key = this.key(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = {
        labels: this.labelObject(labels),
        counts: new Array(this.#bounds.length).fill(0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, series);
    }
    // Non-cumulative here; made cumulative at scrape time.
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    if (i < bounds.length) (series.counts[i] as number)++;
    series.sum += value;
    series.count++;
  }

  get() {
    const values: MetricValue[] = [];
    for (const series of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += series.counts[i] as number;
        values.push({
          labels: { ...series.labels, le: bound },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { ...series.labels, le: "+Inf" },
        value: series.count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

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

    if (secrets?.configured) this.#secretMetrics(secrets, registers);
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

  /** Secret metrics are read from the runtime at scrape time: never a value, only ids and ages. */
  #secretMetrics(secrets: SecretsRuntime, registers: Registry[]): void {
    new Gauge({
      name: "mcp_sidecar_secret_version_info",
      help: "1 per secret, labelled with a 12-hex hash of the VersionId in use (changes on rotation).",
      labelNames: ["secret", "version"],
      registers,
      collect() {
        this.reset();
        for (const secret of secrets.tracked.values()) {
          if (secret.current)
            this.set({ secret: secret.secretId, version: versionLabel(secret.current.versionId) }, 1);
        }
      },
    });
    new Gauge({
      name: "mcp_sidecar_secret_value_age_seconds",
      help: "Time since the version in use was first seen by the sidecar.",
      labelNames: ["secret"],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const secret of secrets.tracked.values()) {
          if (secret.current) this.set({ secret: secret.secretId }, (now - secret.current.since) / 1000);
        }
      },
    });
    new Gauge({
      name: "mcp_sidecar_secret_last_refresh_timestamp_seconds",
      help: "When the secret was last fetched from the agent successfully (0: never).",
      labelNames: ["secret"],
      registers,
      collect() {
        for (const secret of secrets.tracked.values())
          this.set({ secret: secret.secretId }, (secret.lastSuccessAt ?? 0) / 1000);
      },
    });
    new Counter({
      name: "mcp_sidecar_secret_refresh_failures_total",
      help: "Failed fetches from the agent by secret and kind (unreachable, timeout, bad_token, throttled, ...).",
      labelNames: ["secret", "kind"],
      registers,
      collect() {
        this.reset();
        for (const secret of secrets.tracked.values()) {
          for (const [kind, count] of secret.failures) this.inc({ secret: secret.secretId, kind }, count);
        }
      },
    });
    new Counter({
      name: "mcp_sidecar_secret_on_demand_refreshes_total",
      help: "refreshNow fetches triggered by an API key no known version matched.",
      labelNames: ["secret"],
      registers,
      collect() {
        this.reset();
        for (const secret of secrets.tracked.values())
          this.inc({ secret: secret.secretId }, secret.onDemandCount);
      },
    });
  }
}
