// The process metrics of /metrics: prom-client's default set, with the same names and help texts.
//
// All but one come from prom-client's own modules (deps.ts). The CPU counters are kept here because
// prom-client's module for them loads @opentelemetry/api at import time, for exemplars the sidecar
// never enables, and that import was about 6 MiB of the sidecar's idle RSS (of 72 MiB; bench/run.ts).
// They are computed as prom-client computes them: the process.cpuUsage() delta added at each scrape.

import { Counter, DEFAULT_METRICS_MODULES, type Registry } from "../deps.ts";

function registerCpuCounters(registry: Registry, prefix: string): void {
  let last = process.cpuUsage();
  const user = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: "Total user CPU time spent in seconds.",
    registers: [registry],
    // One collect() brings all three counters up to date before a scrape renders them.
    collect() {
      const now = process.cpuUsage();
      const userSeconds = (now.user - last.user) / 1e6;
      const systemSeconds = (now.system - last.system) / 1e6;
      last = now;
      user.inc(userSeconds);
      system.inc(systemSeconds);
      total.inc(userSeconds + systemSeconds);
    },
  });
  const system = new Counter({
    name: `${prefix}process_cpu_system_seconds_total`,
    help: "Total system CPU time spent in seconds.",
    registers: [registry],
  });
  const total = new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: "Total user and system CPU time spent in seconds.",
    registers: [registry],
  });
}

/** Registers prom-client's default process metrics in `registry`, each name starting with `prefix`. */
export function collectProcessMetrics(registry: Registry, prefix: string): void {
  registerCpuCounters(registry, prefix);
  for (const [name, register] of Object.entries(DEFAULT_METRICS_MODULES)) {
    // prom-client skips this one where Node lacks the API it reads; so does the sidecar.
    if (name === "processResources" && typeof process.getActiveResourcesInfo !== "function") continue;
    // prom-client's own default for the event loop lag histogram's resolution, in ms.
    register(registry, { prefix, eventLoopMonitoringPrecision: 10 });
  }
}
