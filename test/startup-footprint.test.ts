// Start-up footprint (issue 8): the CLI loads what the proxy runs and nothing else. Speed itself is
// measured by the bench; this pins the module choices that the bench showed to matter.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import * as deps from "../proxy/deps.ts";
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
    expect(deps.collectDefaultMetrics).toBe(promClient.collectDefaultMetrics);
    expect(typeof new deps.Pool("http://127.0.0.1:9").request).toBe("function");
  });

  it("loading the proxy loads no package index, no fetch, no WebSocket, no Pushgateway", async () => {
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
    expect(modules.filter((m) => m.includes("internal/deps/undici"))).toEqual([]);
  });
});
