// undici's and prom-client's classes, loaded without the packages' index modules. undici's index also
// loads fetch, WebSocket, the cache store, the mock agents and every interceptor; prom-client's loads
// the Pushgateway (https, tls) and the cluster aggregator. The sidecar uses none of them, and at
// start-up they cost about 60 ms and 20 MB of RSS (issue 8's start-up and idle RSS targets). The
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
export const collectDefaultMetrics: typeof PromClient.collectDefaultMetrics = require("prom-client/lib/defaultMetrics.js");
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
