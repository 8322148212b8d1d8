// Start-up footprint: the CLI loads what the proxy runs and nothing else. Speed itself is
// measured by the bench; this pins the module choices that the bench showed to matter.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import * as deps from "../proxy/deps.ts";
import { collectProcessMetrics } from "../proxy/telemetry/process-metrics.ts";
import { ROOT } from "./helpers/processes.ts";

const run = promisify(execFile);

describe("start-up footprint", () => {
  it("loads undici's and prom-client's classes without their index modules, the very classes they export", async () => {
    const [undici, promClient] = await Promise.all([import("undici"), import("prom-client")]);
    expect(deps.Pool).toBe(undici.Pool);
    expect(deps.Client).toBe(undici.Client);
    expect(deps.Registry).toBe(promClient.Registry);
    expect(deps.Counter).toBe(promClient.Counter);
    expect(deps.Gauge).toBe(promClient.Gauge);
    expect(deps.Histogram).toBe(promClient.Histogram);
    expect(typeof new deps.Pool("http://127.0.0.1:9").request).toBe("function");
  });

  it("loading the proxy loads no package index, no fetch, no WebSocket, no Pushgateway, no OpenTelemetry", async () => {
    // A child process: this one has loaded the indexes already.
    const { stdout } = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `await import(${JSON.stringify(`${ROOT}/proxy/sidecar.ts`)});
         const { createRequire } = await import("node:module");
         const cache = Object.keys(createRequire(import.meta.url).cache);
         console.log(JSON.stringify({ modules: process.moduleLoadList, files: cache }));`,
      ],
      { cwd: ROOT },
    );
    const { modules, files } = JSON.parse(stdout) as { modules: string[]; files: string[] };
    expect(files.some((f) => f.endsWith("/undici/lib/dispatcher/pool.js"))).toBe(true);
    expect(files.filter((f) => /\/(undici|prom-client)\/index\.js$/.test(f))).toEqual([]);
    expect(files.filter((f) => /\/(fetch|websocket|pushgateway)/.test(f))).toEqual([]);
    expect(files.filter((f) => f.includes("@opentelemetry"))).toEqual([]);
    expect(modules.filter((m) => m.includes("internal/deps/undici"))).toEqual([]);
  });

  it("registers prom-client's default process metrics, every one of them, as prom-client names and describes them", async () => {
    const promClient = await import("prom-client");
    // prom-client's list of modules is the sidecar's, plus the CPU counters kept in process-metrics.ts.
    expect([...Object.keys(deps.DEFAULT_METRICS_MODULES), "processCpuTotal"].sort()).toEqual(
      [...promClient.collectDefaultMetrics.metricsList].sort(),
    );
    const theirs = new promClient.Registry();
    promClient.collectDefaultMetrics({ register: theirs, prefix: "p_" });
    const ours = new deps.Registry();
    collectProcessMetrics(ours, "p_");
    // In scrape order too: /metrics lists them as prom-client would.
    const families = async (registry: {
      getMetricsAsJSON(): Promise<{ name: string; help: string; type: unknown }[]>;
    }) => (await registry.getMetricsAsJSON()).map(({ name, help, type }) => ({ name, help, type }));
    expect(await families(ours)).toEqual(await families(theirs));
  });

  it("counts the process's CPU time as prom-client does: user + system = total, growing with work", async () => {
    const registry = new deps.Registry();
    collectProcessMetrics(registry, "p_");
    const read = async () => {
      const values = new Map(
        (await registry.getMetricsAsJSON()).map((m) => [m.name, Number(m.values[0]?.value)]),
      );
      return {
        user: values.get("p_process_cpu_user_seconds_total") ?? Number.NaN,
        system: values.get("p_process_cpu_system_seconds_total") ?? Number.NaN,
        total: values.get("p_process_cpu_seconds_total") ?? Number.NaN,
      };
    };
    const first = await read();
    const spinUntil = process.cpuUsage().user + 20_000;
    while (process.cpuUsage().user < spinUntil) {
      // burn 20 ms of user CPU time: the counter must grow by at least that much
    }
    const second = await read();
    expect(second.user - first.user).toBeGreaterThanOrEqual(0.02);
    expect(second.total).toBeCloseTo(second.user + second.system, 6);
  });
});
