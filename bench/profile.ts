// npm run bench:profile: the sidecar under wrk load with --cpu-prof, then the functions with the
// most self time, by file: where the CPU per request goes.
//
//   node bench/profile.ts [SECONDS]
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  fillCompileCache,
  freePort,
  LOAD_CPU,
  nginxUpstreamConfig,
  PROXY_CPU,
  ROOT,
  SIDECAR_NODE_FLAGS,
  sidecarEnv,
  startNginx,
  startQuiet,
  stop,
  stopAll,
  stopOnSignals,
  waitForHttp,
  wrk,
} from "./lib.ts";

stopOnSignals();
const seconds = Number(process.argv[2] ?? 8);
// Kept after the run (bench/results is not committed), to open in Chrome DevTools or speedscope.
const profileDir = join(
  ROOT,
  "bench",
  "results",
  `profile-${new Date().toISOString().replace(/[:.]/g, "-")}`,
);
mkdirSync(profileDir, { recursive: true });
const upstreamPort = await freePort();
const upstream = await startNginx(nginxUpstreamConfig(upstreamPort), "profile-upstream", LOAD_CPU);
const port = await freePort();
// As the image runs it (and as the bench measures it): its Node flags, the compile cache filled.
fillCompileCache();
const sidecar = startQuiet(
  process.execPath,
  [
    ...SIDECAR_NODE_FLAGS,
    "--cpu-prof",
    `--cpu-prof-dir=${profileDir}`,
    "proxy/cli.ts",
    "--upstream",
    `http://127.0.0.1:${upstreamPort}`,
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
  ],
  sidecarEnv(),
  PROXY_CPU,
);
await waitForHttp(`http://127.0.0.1:${port}/health`);
await wrk(`http://127.0.0.1:${port}/mcp`, 2, 64);
const result = await wrk(`http://127.0.0.1:${port}/mcp`, seconds, 64);
process.stdout.write(`load: ${Math.round(result.rps)} requests/s, p99 ${result.p99ms.toFixed(2)} ms\n`);
sidecar.kill("SIGTERM");
await new Promise((resolve) => sidecar.once("exit", resolve));
await stop(upstream);
await stopAll();

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}
const file = readdirSync(profileDir).find((name) => name.endsWith(".cpuprofile"));
if (!file) throw new Error("no profile written");
const profile = JSON.parse(readFileSync(join(profileDir, file), "utf8")) as { nodes: Node[] };
const total = profile.nodes.reduce((sum, n) => sum + n.hitCount, 0);
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const n of profile.nodes) {
  const url = n.callFrame.url
    .replace(/^file:\/\/.*\/node_modules\//, "npm:")
    .replace(pathToFileURL(ROOT).href, "");
  const key = `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + n.hitCount);
  const group = url.startsWith("npm:")
    ? url
        .split("/")
        .slice(0, url.startsWith("npm:@") ? 2 : 1)
        .join("/")
    : url || n.callFrame.functionName;
  byFile.set(group, (byFile.get(group) ?? 0) + n.hitCount);
}
const top = (map: Map<string, number>, n: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n");
process.stdout.write(
  `\nself time by function (top 30):\n${top(byFunction, 30)}\n\nself time by file or package (top 20):\n${top(byFile, 20)}\n\nprofile: ${join(profileDir, file)}\n`,
);
