// npm run bench: the sidecar against nginx (and the upstream directly) on the same machine, in the
// same run. Prints a table of medians and ratios, writes bench/results/<time>.json and, with
// --chart FILE, an SVG chart of the ratios.
//
//   npm run bench                      all scenarios, 3 runs each
//   npm run bench -- --runs 5 --seconds 10 --streams 2000 --chart docs/performance.svg
//   npm run bench -- --only overhead,latency
//   npm run bench -- --only overhead,startup --baseline ../base   A/B against another checkout
//
// Scenarios: 1 overhead (saturated, CPU per request of the proxy process, from /proc);
// 2 latency at a fixed rate, open loop; 3 MCP end to end with the reference server (JSON and SSE);
// 4 idle SSE streams: RSS and keepalives; 5 start-up time to /ready and idle RSS; 6 memory under a
// hostile burst, then quiet; 7 stdio: the --stdio upstream against supergateway and mcp-proxy.

import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { availableParallelism, cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  childPids,
  cpuSeconds,
  fillCompileCache,
  freePort,
  has,
  LOAD_CPU,
  median,
  nginxProxyConfig,
  nginxUpstreamConfig,
  PIN,
  PROXY_CPU,
  pinned,
  ROOT,
  rssBytes,
  runForJson,
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
import { routingScenario } from "./routing-scenario.ts";
import { stdioScenario } from "./stdio-scenario.ts";

const SCENARIOS = ["overhead", "latency", "mcp", "streams", "startup", "memory", "stdio", "routing"];
const HELP = `npm run bench -- [options]     the sidecar and nginx against the upstream, same run

  --runs N          runs per scenario, interleaved; medians reported (default 3)
  --seconds N       length of each measured run (default 8)
  --connections N   wrk connections for saturation (default 64)
  --rate N          requests/s of the open-loop latency scenario (default 1000)
  --streams N       idle SSE streams held open (default 2000)
  --burst N         requests of the memory scenario's hostile-plus-normal burst (default 100000)
  --quiet N         seconds of quiet after it, RSS sampled every 15 s (default 60)
  --only LIST       comma-separated scenarios: ${SCENARIOS.join(", ")} (default all)
  --chart FILE      also write the ratio chart (SVG)
  --out FILE        where the JSON results go (default bench/results/<time>.json)
  --baseline DIR    also run the sidecar of another checkout (e.g. a git worktree of the previous
                    commit, with node_modules linked), interleaved in the overhead and start-up
                    scenarios, and print this sidecar's ratios to it: an A/B in the same run`;

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "8" },
    connections: { type: "string", default: "64" },
    rate: { type: "string", default: "1000" },
    streams: { type: "string", default: "2000" },
    burst: { type: "string", default: "100000" },
    quiet: { type: "string", default: "60" },
    only: { type: "string" },
    chart: { type: "string" },
    out: { type: "string" },
    baseline: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
function positiveInteger(
  flag: "runs" | "seconds" | "connections" | "rate" | "streams" | "burst" | "quiet",
): number {
  const n = Number(values[flag]);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench: --${flag} "${values[flag]}" is not a whole number >= 1 (see --help)\n`);
    process.exit(2);
  }
  return n;
}
const RUNS = positiveInteger("runs");
const SECONDS = positiveInteger("seconds");
const CONNECTIONS = positiveInteger("connections");
const RATE = positiveInteger("rate");
const STREAMS = positiveInteger("streams");
const BURST = positiveInteger("burst");
const QUIET_S = positiveInteger("quiet");
const only = values.only ? new Set(values.only.split(",")) : undefined;
for (const name of only ?? []) {
  if (!SCENARIOS.includes(name)) {
    process.stderr.write(`bench: --only "${name}" is not a scenario (${SCENARIOS.join(", ")})\n`);
    process.exit(2);
  }
}
const want = (name: string) => !only || only.has(name);
const BASELINE = values.baseline === undefined ? undefined : resolve(values.baseline);
if (BASELINE !== undefined && !existsSync(join(BASELINE, "proxy/cli.ts"))) {
  process.stderr.write(
    `bench: --baseline "${values.baseline}" holds no proxy/cli.ts (a checkout of this repository)\n`,
  );
  process.exit(2);
}
const NODE = process.execPath;
const results: Record<string, unknown> = {
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  settings: {
    runs: RUNS,
    seconds: SECONDS,
    connections: CONNECTIONS,
    rate: RATE,
    streams: STREAMS,
    pinned: PIN,
    baseline: BASELINE,
  },
};
const table: string[][] = [];
const row = (...cells: (string | number)[]) =>
  table.push(cells.map((c) => (typeof c === "number" ? fmt(c) : c)));
function fmt(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

const haveNginx = has("nginx");
const haveWrk = has("wrk");
if (!haveNginx)
  process.stderr.write("bench: nginx not found (apt-get install nginx): the nginx columns are skipped\n");
if (!haveWrk)
  process.stderr.write("bench: wrk not found (apt-get install wrk): saturation scenarios are skipped\n");

/** The sidecar's command line, as its image runs it (Node flags first); `root`: whose sidecar. */
function sidecarArgs(upstream: string, port: number, extra: string[] = [], root = ROOT): string[] {
  return [
    ...SIDECAR_NODE_FLAGS,
    join(root, "proxy/cli.ts"),
    "--upstream",
    upstream,
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    ...extra,
  ];
}

/**
 * A Node proxy under test, started once its /health answers. On the proxy CPU, like nginx: the
 * proxies under test get the same CPU to themselves.
 */
async function startNodeProxy(args: (port: number) => string[], env: Record<string, string> = {}) {
  const port = await freePort();
  const child = startQuiet(NODE, args(port), env, PROXY_CPU);
  await waitForHttp(`http://127.0.0.1:${port}/health`);
  return { child, url: `http://127.0.0.1:${port}`, pid: child.pid as number };
}

const startSidecar = (upstream: string, extra: string[] = [], root = ROOT) =>
  startNodeProxy((port) => sidecarArgs(upstream, port, extra, root), sidecarEnv());

async function startUpstream() {
  if (haveNginx) {
    const port = await freePort();
    const child = await startNginx(nginxUpstreamConfig(port), `upstream-${port}`, LOAD_CPU);
    return { child, url: `http://127.0.0.1:${port}` };
  }
  const port = await freePort();
  const child = startQuiet(
    NODE,
    [
      "-e",
      `require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{const b='{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}';s.writeHead(200,{"content-type":"application/json","content-length":b.length});s.end(b)})}).listen(${port},"127.0.0.1")`,
    ],
    {},
    LOAD_CPU,
  );
  await waitForHttp(`http://127.0.0.1:${port}/`);
  return { child, url: `http://127.0.0.1:${port}` };
}

/** A reference proxy from bench/ (naive-proxy.ts, floor-proxy.ts). */
const startReferenceProxy = (script: string, upstreamUrl: string) =>
  startNodeProxy((port) => [script, upstreamUrl, String(port)]);

async function startNginxProxy(upstreamUrl: string) {
  const port = await freePort();
  const child = await startNginx(
    nginxProxyConfig(port, Number(new URL(upstreamUrl).port)),
    `proxy-${port}`,
    PROXY_CPU,
  );
  const pids = [child.pid as number, ...childPids(child.pid as number)];
  return { child, url: `http://127.0.0.1:${port}`, pids };
}

// ---- 1. overhead at saturation ----
async function overhead() {
  if (!haveWrk) return;
  const upstream = await startUpstream();
  const sidecar = await startSidecar(upstream.url);
  const nginx = haveNginx ? await startNginxProxy(upstream.url) : undefined;
  const naive = await startReferenceProxy("bench/naive-proxy.ts", upstream.url);
  const floor = await startReferenceProxy("bench/floor-proxy.ts", upstream.url);
  const baseline = BASELINE ? await startSidecar(upstream.url, [], BASELINE) : undefined;
  const targets: { name: string; url: string; pids: number[] }[] = [
    { name: "direct", url: upstream.url, pids: [] },
    { name: "sidecar", url: sidecar.url, pids: [sidecar.pid] },
    ...(baseline ? [{ name: "baseline", url: baseline.url, pids: [baseline.pid] }] : []),
    ...(nginx ? [{ name: "nginx", url: nginx.url, pids: nginx.pids }] : []),
    { name: "naive", url: naive.url, pids: [naive.pid] },
    { name: "floor", url: floor.url, pids: [floor.pid] },
  ];
  const samples = new Map<string, { rps: number[]; cpuUs: number[]; errors: number }>();
  for (const t of targets) await wrk(`${t.url}/mcp`, 2, CONNECTIONS); // warm-up (JIT, pools)
  for (let run = 0; run < RUNS; run++) {
    // Interleaved, so drift on a noisy machine hits every target alike.
    for (const target of targets) {
      const before = target.pids.length ? cpuSeconds(target.pids) : 0;
      const result = await wrk(`${target.url}/mcp`, SECONDS, CONNECTIONS);
      const cpu = target.pids.length ? cpuSeconds(target.pids) - before : Number.NaN;
      const entry = samples.get(target.name) ?? { rps: [], cpuUs: [], errors: 0 };
      entry.rps.push(result.rps);
      entry.cpuUs.push((cpu / result.requests) * 1e6);
      entry.errors += result.errors + result.non2xx;
      samples.set(target.name, entry);
    }
  }
  const summary = Object.fromEntries(
    [...samples].map(([name, s]) => [
      name,
      { rps: median(s.rps), cpuUsPerRequest: median(s.cpuUs), errors: s.errors },
    ]),
  );
  results.overhead = summary;
  const side = summary.sidecar as { rps: number; cpuUsPerRequest: number; errors: number };
  const ng = summary.nginx as { rps: number; cpuUsPerRequest: number } | undefined;
  row(
    "1 overhead",
    "requests/s at saturation",
    (summary.direct as { rps: number }).rps,
    side.rps,
    ng?.rps ?? Number.NaN,
    ng ? side.rps / ng.rps : Number.NaN,
    ">= 0.8",
  );
  row(
    "1 overhead",
    "proxy CPU per request (us)",
    Number.NaN,
    side.cpuUsPerRequest,
    ng?.cpuUsPerRequest ?? Number.NaN,
    ng ? side.cpuUsPerRequest / ng.cpuUsPerRequest : Number.NaN,
    "<= 1.5",
  );
  const reference = (name: string, what: string) => {
    const r = summary[name] as { rps: number; cpuUsPerRequest: number; errors: number };
    notes.push(
      `reference: ${what} ran ${Math.round(r.rps)} requests/s at ${r.cpuUsPerRequest.toFixed(1)} us CPU per request` +
        (ng ? ` (${(r.cpuUsPerRequest / ng.cpuUsPerRequest).toFixed(2)}x nginx)` : "") +
        (r.errors ? `, ${r.errors} errors` : ""),
    );
  };
  reference("naive", "a naive node:http + undici proxy (bench/naive-proxy.ts)");
  reference("floor", "Node moving bytes with no HTTP library (bench/floor-proxy.ts)");
  const base = summary.baseline as { rps: number; cpuUsPerRequest: number } | undefined;
  if (base) {
    row(
      "1 overhead",
      "CPU per request, baseline sidecar (us)",
      Number.NaN,
      base.cpuUsPerRequest,
      Number.NaN,
      side.cpuUsPerRequest / base.cpuUsPerRequest,
      "A/B ratio",
    );
    row(
      "1 overhead",
      "requests/s, baseline sidecar",
      Number.NaN,
      base.rps,
      Number.NaN,
      side.rps / base.rps,
      "A/B ratio",
    );
  }
  await Promise.all([upstream, sidecar, nginx, naive, floor, baseline].map((proxy) => stop(proxy?.child)));
}

// ---- 2. latency at a fixed rate (open loop) ----
async function openLoop(url: string): Promise<{ p50: number; p99: number; errors: number }> {
  // The generator shares CPU 0 with the upstream, as wrk does; the proxy has CPU 1 to itself.
  const [file, args] = pinned(LOAD_CPU, NODE, [
    "bench/open-loop.ts",
    `${url}/mcp`,
    String(RATE),
    String(Math.max(3, Math.round(SECONDS / 2))),
    "64",
  ]);
  return runForJson<{ p50: number; p99: number; errors: number }>(file, args);
}

async function latency() {
  const upstream = await startUpstream();
  const sidecar = await startSidecar(upstream.url);
  const nginx = haveNginx ? await startNginxProxy(upstream.url) : undefined;
  const targets = [
    { name: "direct", url: upstream.url },
    { name: "sidecar", url: sidecar.url },
    ...(nginx ? [{ name: "nginx", url: nginx.url }] : []),
  ];
  const samples = new Map<string, { p50: number[]; p99: number[]; errors: number }>();
  for (const target of targets) await openLoop(target.url); // warm-up
  for (let run = 0; run < RUNS; run++) {
    for (const target of targets) {
      const r = await openLoop(target.url);
      const entry = samples.get(target.name) ?? { p50: [], p99: [], errors: 0 };
      entry.p50.push(r.p50);
      entry.p99.push(r.p99);
      entry.errors += r.errors;
      samples.set(target.name, entry);
    }
  }
  const m = Object.fromEntries(
    [...samples].map(([name, s]) => [name, { p50: median(s.p50), p99: median(s.p99), errors: s.errors }]),
  );
  const direct = m.direct as { p50: number; p99: number };
  const added = (name: string) => {
    const t = m[name] as { p50: number; p99: number } | undefined;
    return t ? { p50: t.p50 - direct.p50, p99: t.p99 - direct.p99 } : undefined;
  };
  results.latency = { rate: RATE, ...m, addedSidecar: added("sidecar"), addedNginx: added("nginx") };
  row(
    `2 latency @${RATE}/s`,
    "p50 ms (added over direct)",
    direct.p50,
    added("sidecar")?.p50 ?? Number.NaN,
    added("nginx")?.p50 ?? Number.NaN,
    Number.NaN,
    "sidecar <= 0.3",
  );
  row(
    `2 latency @${RATE}/s`,
    "p99 ms (added over direct)",
    direct.p99,
    added("sidecar")?.p99 ?? Number.NaN,
    added("nginx")?.p99 ?? Number.NaN,
    Number.NaN,
    "sidecar <= 1",
  );
  await Promise.all([stop(upstream.child), stop(sidecar.child), stop(nginx?.child)]);
}

// ---- 3. MCP end to end: the reference server, JSON and SSE responses ----
async function mcpEndToEnd() {
  if (!haveWrk) return;
  results.mcp = {};
  for (const mode of ["json", "sse"] as const) {
    const port = await freePort();
    // Not pinned, on purpose: in a task the sidecar's CPU comes out of the server's budget, so both
    // configurations get the same two CPUs, and the ratio says what the sidecar costs the server.
    const server = startQuiet(NODE, [
      "server/main.ts",
      "--port",
      String(port),
      "--stateless",
      ...(mode === "json" ? ["--json-response"] : []),
    ]);
    await waitForHttp(`http://127.0.0.1:${port}/health`);
    const direct = `http://127.0.0.1:${port}`;
    const sidecar = await startSidecar(direct);
    await wrk(`${direct}/mcp`, 2, 16);
    await wrk(`${sidecar.url}/mcp`, 2, 16);
    const d: { rps: number[]; p99: number[] } = { rps: [], p99: [] };
    const s: { rps: number[]; p99: number[] } = { rps: [], p99: [] };
    for (let run = 0; run < RUNS; run++) {
      const a = await wrk(`${direct}/mcp`, SECONDS, 16);
      const b = await wrk(`${sidecar.url}/mcp`, SECONDS, 16);
      if (a.non2xx + b.non2xx > 0) throw new Error(`MCP ${mode}: non-2xx answers (${a.non2xx}, ${b.non2xx})`);
      d.rps.push(a.rps);
      d.p99.push(a.p99ms);
      s.rps.push(b.rps);
      s.p99.push(b.p99ms);
    }
    const entry = {
      direct: { rps: median(d.rps), p99ms: median(d.p99) },
      sidecar: { rps: median(s.rps), p99ms: median(s.p99) },
    };
    (results.mcp as Record<string, unknown>)[mode] = entry;
    row(
      `3 MCP ${mode}`,
      "requests/s (sidecar/direct)",
      entry.direct.rps,
      entry.sidecar.rps,
      Number.NaN,
      entry.sidecar.rps / entry.direct.rps,
      "",
    );
    row(`3 MCP ${mode}`, "p99 ms", entry.direct.p99ms, entry.sidecar.p99ms, Number.NaN, Number.NaN, "");
    await Promise.all([stop(server), stop(sidecar.child)]);
  }
}

// ---- 4. idle SSE streams ----
async function streams() {
  const port = await freePort();
  const upstream = startQuiet(NODE, [
    "-e",
    `require("http").createServer((q,s)=>{s.writeHead(200,{"content-type":"text/event-stream"});s.write(": open\\n\\n")}).listen(${port},"127.0.0.1")`,
  ]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const KEEPALIVE_S = 2;
  const sidecar = await startSidecar(`http://127.0.0.1:${port}`, ["--sse-keepalive", `${KEEPALIVE_S}s`]);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idleRss = rssBytes(sidecar.pid);
  const sockets: Socket[] = [];
  let keepalives = 0;
  let opened = 0;
  const allOpen = Promise.withResolvers<void>();
  for (let i = 0; i < STREAMS; i++) {
    const socket = connect(Number(new URL(sidecar.url).port), "127.0.0.1");
    socket.setEncoding("utf8");
    let first = true;
    socket.on("data", (chunk: string) => {
      if (first && chunk.includes(": open")) {
        first = false;
        if (++opened === STREAMS) allOpen.resolve();
      }
      keepalives += chunk.split(": keepalive").length - 1;
    });
    socket.on("error", () => {});
    socket.write("GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    sockets.push(socket);
    if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await Promise.race([allOpen.promise, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  const keepalivesBefore = keepalives;
  const WINDOW_S = 3 * KEEPALIVE_S + 1;
  await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000));
  const openRss = rssBytes(sidecar.pid);
  const delivered = keepalives - keepalivesBefore;
  results.streams = {
    streams: STREAMS,
    opened,
    idleRssMB: idleRss / 2 ** 20,
    withStreamsRssMB: openRss / 2 ** 20,
    bytesPerStream: (openRss - idleRss) / STREAMS,
    keepaliveIntervalS: KEEPALIVE_S,
    keepalivesDelivered: delivered,
    keepalivesPerStreamPerInterval: delivered / STREAMS / (WINDOW_S / KEEPALIVE_S),
  };
  row(
    "4 streams",
    `RSS with ${opened} idle SSE streams (MB)`,
    Number.NaN,
    openRss / 2 ** 20,
    Number.NaN,
    Number.NaN,
    "<= 150",
  );
  row("4 streams", "bytes per stream", Number.NaN, (openRss - idleRss) / STREAMS, Number.NaN, Number.NaN, "");
  row(
    "4 streams",
    `keepalives delivered in ${WINDOW_S} s`,
    Number.NaN,
    delivered,
    Number.NaN,
    Number.NaN,
    `~${Math.floor(WINDOW_S / KEEPALIVE_S)} per stream`,
  );
  for (const socket of sockets) socket.destroy();
  await Promise.all([stop(upstream), stop(sidecar.child)]);
}

// ---- 5. start-up ----
async function startup() {
  const upstream = await startUpstream();
  const roots = [ROOT, ...(BASELINE ? [BASELINE] : [])];
  const times = new Map(roots.map((root) => [root, [] as number[]]));
  const rssOf = new Map(roots.map((root) => [root, [] as number[]]));
  for (let run = 0; run < Math.max(RUNS, 5); run++) {
    // Interleaved with the baseline's, when there is one.
    for (const root of roots) {
      const port = await freePort();
      const started = performance.now();
      const child = startQuiet(
        NODE,
        sidecarArgs(upstream.url, port, ["--ready-probe", "tcp"], root),
        sidecarEnv(),
      );
      await waitForHttp(`http://127.0.0.1:${port}/ready`);
      times.get(root)?.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      rssOf.get(root)?.push(rssBytes(child.pid as number));
      await stop(child);
    }
  }
  const rss = rssOf.get(ROOT) as number[];
  results.startup = { toReadyMs: median(times.get(ROOT) as number[]), idleRssMB: median(rss) / 2 ** 20 };
  row(
    "5 start-up",
    "process start to /ready 200 (ms)",
    Number.NaN,
    median(times.get(ROOT) as number[]),
    Number.NaN,
    Number.NaN,
    "<= 300",
  );
  row("5 start-up", "idle RSS (MB)", Number.NaN, median(rss) / 2 ** 20, Number.NaN, Number.NaN, "<= 70");
  if (BASELINE) {
    const baseTimes = median(times.get(BASELINE) as number[]);
    const baseRss = median(rssOf.get(BASELINE) as number[]);
    results.startup = {
      ...(results.startup as object),
      baseline: { toReadyMs: baseTimes, idleRssMB: baseRss / 2 ** 20 },
    };
    row(
      "5 start-up",
      "to /ready, baseline sidecar (ms)",
      Number.NaN,
      baseTimes,
      Number.NaN,
      median(times.get(ROOT) as number[]) / baseTimes,
      "A/B ratio",
    );
    row(
      "5 start-up",
      "idle RSS, baseline sidecar (MB)",
      Number.NaN,
      baseRss / 2 ** 20,
      Number.NaN,
      median(rss) / baseRss,
      "A/B ratio",
    );
  }
  await stop(upstream.child);
}

// ---- 6. memory: a hostile-plus-normal burst, then quiet ----
async function memory() {
  const port = await freePort();
  // Answers POSTs once their body is in (with its length), and opens an event stream on /sse.
  const upstream = startQuiet(
    NODE,
    [
      "-e",
      `require("http").createServer((q,s)=>{if(q.url==="/sse"){s.writeHead(200,{"content-type":"text/event-stream"});s.write(": open\\n\\n");return}let n=0;q.on("data",c=>n+=c.length);q.on("end",()=>{const b='{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"'+n+'"}]}}';s.writeHead(200,{"content-type":"application/json","content-length":Buffer.byteLength(b)});s.end(b)})}).listen(${port},"127.0.0.1")`,
    ],
    {},
    LOAD_CPU,
  );
  await waitForHttp(`http://127.0.0.1:${port}/`);
  const sidecar = await startSidecar(`http://127.0.0.1:${port}`, ["--log-level", "warn"]);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idle = rssBytes(sidecar.pid);
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(sidecar.pid));
  }, 100);
  const [file, args] = pinned(LOAD_CPU, NODE, ["bench/hostile-load.ts", sidecar.url, String(BURST), "50"]);
  const burst = await runForJson<{ requests: number; seconds: number; errors: number }>(file, args);
  clearInterval(sampler);
  const afterBurst = rssBytes(sidecar.pid);
  const quiet: number[] = [];
  for (let waited = 0; waited < QUIET_S; waited += 15) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(15, QUIET_S - waited) * 1000));
    quiet.push(rssBytes(sidecar.pid) / 2 ** 20);
  }
  const afterQuiet = quiet.at(-1) ?? afterBurst / 2 ** 20;
  results.memory = {
    burst,
    idleRssMB: idle / 2 ** 20,
    peakRssMB: peak / 2 ** 20,
    afterBurstRssMB: afterBurst / 2 ** 20,
    quietRssMB: quiet,
    afterQuietOverIdle: afterQuiet / (idle / 2 ** 20),
  };
  const mb = (bytes: number) => bytes / 2 ** 20;
  row("6 memory", `idle RSS (MB)`, Number.NaN, mb(idle), Number.NaN, Number.NaN, "");
  row(
    "6 memory",
    `peak RSS, ${BURST} requests at 50 (MB)`,
    Number.NaN,
    mb(peak),
    Number.NaN,
    Number.NaN,
    "<= 120",
  );
  row(
    "6 memory",
    `RSS after ${QUIET_S} s quiet (MB; ratio to idle)`,
    Number.NaN,
    afterQuiet,
    Number.NaN,
    afterQuiet / mb(idle),
    "<= 1.3x idle",
  );
  notes.push(
    `memory: ${burst.requests} requests in ${burst.seconds.toFixed(1)} s, ${burst.errors} client errors; RSS every 15 s of quiet: ${quiet.map((q) => q.toFixed(0)).join(", ")} MB`,
  );
  await Promise.all([stop(upstream), stop(sidecar.child)]);
}

// ---- 7. stdio: the sidecar's --stdio against supergateway and mcp-proxy, same server ----
async function stdio() {
  const r = await stdioScenario(RUNS, SECONDS, 10);
  results.stdio = r;
  const side = r.sidecar;
  const peers = [r.supergateway, r["mcp-proxy"]];
  const bestCalls = Math.max(...peers.map((p) => p.callsPerSecond));
  const leastCpu = Math.min(...peers.map((p) => p.cpuUsPerCall));
  row(
    "7 stdio",
    "tools/call per s, 10 sessions (vs the better peer)",
    Number.NaN,
    side.callsPerSecond,
    Number.NaN,
    side.callsPerSecond / bestCalls,
    ">= 2",
  );
  row(
    "7 stdio",
    "gateway CPU per call (us; vs the leaner peer)",
    Number.NaN,
    side.cpuUsPerCall,
    Number.NaN,
    side.cpuUsPerCall / leastCpu,
    "<= 0.5",
  );
  row(
    "7 stdio",
    "sessions per s (vs supergateway)",
    Number.NaN,
    side.sessionsPerSecond,
    Number.NaN,
    side.sessionsPerSecond / r.supergateway.sessionsPerSecond,
    ">= 10",
  );
  row(
    "7 stdio",
    "gateway RSS under the call load (MB)",
    Number.NaN,
    side.rssMB,
    Number.NaN,
    Number.NaN,
    "<= 150",
  );
  for (const name of ["supergateway", "mcp-proxy"] as const) {
    const p = r[name];
    notes.push(
      `stdio peer ${name}: ${Math.round(p.callsPerSecond)} calls/s at ${Math.round(p.cpuUsPerCall)} us CPU per call, ${p.sessionsPerSecond.toFixed(1)} sessions/s, RSS ${Math.round(p.rssMB)} MB, ${p.errors} errors`,
    );
  }
  notes.push(`stdio sidecar: ${side.errors} errors`);
  // What this machine allows whoever fronts the servers: the load's client and the children take
  // their CPU per call and per session whatever the gateway does; with the gateway at zero, the
  // cores bound the rates at this.
  const cores = availableParallelism();
  const ceiling = (clientUs: number, childrenUs: number) => (cores / (clientUs + childrenUs)) * 1e6;
  const callCeiling = ceiling(side.clientUsPerCall, side.childrenUsPerCall);
  const sessionCeiling = ceiling(side.clientUsPerSession, side.childrenUsPerSession);
  notes.push(
    `stdio bound on ${cores} cores: per call the load's client takes ${Math.round(side.clientUsPerCall)} us and the children ${Math.round(side.childrenUsPerCall)} us of CPU, so even a gateway that cost nothing would reach ${Math.round(callCeiling)} calls/s (${(callCeiling / bestCalls).toFixed(2)}x the better peer; the target asks 2x); per session ${(side.clientUsPerSession / 1000).toFixed(1)} ms and ${(side.childrenUsPerSession / 1000).toFixed(1)} ms (a child's boot, call and exit), at most ${sessionCeiling.toFixed(1)} sessions/s (${(sessionCeiling / r.supergateway.sessionsPerSecond).toFixed(1)}x supergateway's; the target asks 10x)`,
  );
}

// ---- 8. session routing: a forwarded request against a local one ----
async function routing() {
  const r = await routingScenario(RUNS, 2000);
  results.routing = r;
  for (const stat of ["p50ms", "p99ms"] as const)
    row(
      "8 routing",
      `tools/call ${stat.slice(0, 3)} ms, forwarded vs local (+${(r.forwarded[stat] - r.local[stat]).toFixed(2)} ms)`,
      r.local[stat],
      r.forwarded[stat],
      Number.NaN,
      r.forwarded[stat] / r.local[stat],
      "",
    );
  notes.push(
    `session routing: ${r.calls} calls each way, ${r.errors} errors (direct column: served by the owner; sidecar column: forwarded by another task)`,
  );
}

/** Lines printed under the table. */
const notes: string[] = [];

function printTable(): void {
  const header = ["scenario", "measure", "direct", "sidecar", "nginx", "ratio", "target"];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ");
  process.stdout.write(`\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n`);
  for (const r of table) process.stdout.write(`${line(r)}\n`);
  for (const note of notes) process.stdout.write(`\n${note}\n`);
}

/** A bar chart of sidecar/nginx (and sidecar/direct) ratios, 1.0 marked, targets dashed. */
function chart(): string {
  const bars: { label: string; value: number; target?: number }[] = [];
  const o = results.overhead as Record<string, { rps: number; cpuUsPerRequest: number }> | undefined;
  if (o?.nginx && o.sidecar) {
    bars.push({
      label: "CPU per request, sidecar / nginx",
      value: o.sidecar.cpuUsPerRequest / o.nginx.cpuUsPerRequest,
      target: 1.5,
    });
    bars.push({
      label: "saturated requests/s, sidecar / nginx",
      value: o.sidecar.rps / o.nginx.rps,
      target: 0.8,
    });
  }
  const mcp = results.mcp as
    | Record<string, { direct: { rps: number }; sidecar: { rps: number } }>
    | undefined;
  for (const mode of ["json", "sse"]) {
    const m = mcp?.[mode];
    if (m)
      bars.push({ label: `MCP ${mode} requests/s, sidecar / direct`, value: m.sidecar.rps / m.direct.rps });
  }
  const width = 720;
  const barHeight = 28;
  const left = 300;
  const scale =
    (width - left - 60) / Math.max(2, ...bars.map((b) => b.value), ...bars.map((b) => b.target ?? 0));
  const height = 60 + bars.length * (barHeight + 14);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13" role="img">`,
    "<title>mcp-sidecar benchmark ratios: sidecar against nginx and against the upstream directly</title>",
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">mcp-sidecar ratios (same machine, same run; lower CPU is better, higher throughput is better)</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = 40 + i * (barHeight + 14);
    parts.push(`<text x="10" y="${y + 19}">${bar.label}</text>`);
    parts.push(
      `<rect x="${left}" y="${y}" width="${(bar.value * scale).toFixed(1)}" height="${barHeight}" fill="#4a7ebb"/>`,
    );
    parts.push(`<text x="${left + bar.value * scale + 6}" y="${y + 19}">${bar.value.toFixed(2)}</text>`);
    if (bar.target !== undefined) {
      const x = left + bar.target * scale;
      parts.push(
        `<line x1="${x}" y1="${y - 3}" x2="${x}" y2="${y + barHeight + 3}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
      );
    }
  });
  const one = left + scale;
  parts.push(`<line x1="${one}" y1="34" x2="${one}" y2="${height - 10}" stroke="#333" stroke-width="1"/>`);
  parts.push(`<text x="${one + 4}" y="${height - 12}" fill="#333">1.0</text>`);
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

stopOnSignals();
try {
  fillCompileCache();
  if (BASELINE) fillCompileCache(BASELINE);
  if (want("overhead")) await overhead();
  if (want("latency")) await latency();
  if (want("mcp")) await mcpEndToEnd();
  if (want("streams")) await streams();
  if (want("startup")) await startup();
  if (want("memory")) await memory();
  if (want("stdio")) await stdio();
  if (want("routing")) await routing();
} finally {
  await stopAll();
}
printTable();
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
const out =
  values.out ?? join(ROOT, "bench/results", `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`\nresults: ${out}\n`);
if (values.chart) {
  writeFileSync(values.chart, chart());
  process.stdout.write(`chart: ${values.chart}\n`);
}
