// undici's and prom-client's classes, loaded without the packages' index modules. undici's index also
// loads fetch, WebSocket, the cache store, the mock agents and every interceptor; prom-client's loads
// the Pushgateway (https, tls) and the cluster aggregator. The sidecar uses none of them, and at
// start-up they cost about 60 ms and 20 MB of RSS (measured with bench/run.ts --only startup). The
// classes are the very ones the indexes export, so the packages' own types describe them.

import { createRequire } from "node:module";
import type * as PromClient from "prom-client";
import type * as Undici from "undici";

const require = createRequire(import.meta.url);

// request()/stream()/... are attached to Dispatcher.prototype by undici's index; this does the same,
// so a Pool or Client loaded here has its full documented API whichever module loads first.
Object.assign(require("undici/lib/dispatcher/dispatcher.js").prototype, require("undici/lib/api/index.js"));

export const Pool: typeof Undici.Pool = require("undici/lib/dispatcher/pool.js");
export const Client: typeof Undici.Client = require("undici/lib/dispatcher/client.js");
export type Pool = Undici.Pool;
export type Client = Undici.Client;

export const Registry: typeof PromClient.Registry = require("prom-client/lib/registry.js");
export const Counter: typeof PromClient.Counter = require("prom-client/lib/counter.js");
export const Gauge: typeof PromClient.Gauge = require("prom-client/lib/gauge.js");
export const Histogram: typeof PromClient.Histogram = require("prom-client/lib/histogram.js");

/** A prom-client default-metrics module: registers its metrics in `registry`, named with `prefix`. */
export type DefaultMetricsModule = (
  registry: PromClient.Registry,
  config: { readonly prefix: string; readonly eventLoopMonitoringPrecision: number },
) => void;

/**
 * prom-client's default process metrics, module by module, except processCpuTotal: it loads
 * @opentelemetry/api (for exemplars, which the sidecar does not use), and that import alone was about
 * 6 MiB of the sidecar's idle RSS. process-metrics.ts keeps its three counters. The names are the
 * keys of prom-client's own list (a test checks that the two lists stay the same).
 */
export const DEFAULT_METRICS_MODULES: Readonly<Record<string, DefaultMetricsModule>> = {
  processStartTime: require("prom-client/lib/metrics/processStartTime.js"),
  osMemoryHeap: require("prom-client/lib/metrics/osMemoryHeap.js"),
  processOpenFileDescriptors: require("prom-client/lib/metrics/processOpenFileDescriptors.js"),
  processMaxFileDescriptors: require("prom-client/lib/metrics/processMaxFileDescriptors.js"),
  eventLoopLag: require("prom-client/lib/metrics/eventLoopLag.js"),
  processResources: require("prom-client/lib/metrics/processResources.js"),
  processHandles: require("prom-client/lib/metrics/processHandles.js"),
  processRequests: require("prom-client/lib/metrics/processRequests.js"),
  heapSizeAndUsed: require("prom-client/lib/metrics/heapSizeAndUsed.js"),
  heapSpacesSizeAndUsed: require("prom-client/lib/metrics/heapSpacesSizeAndUsed.js"),
  version: require("prom-client/lib/metrics/version.js"),
  gc: require("prom-client/lib/metrics/gc.js"),
};
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
