// The stdio scenario of npm run bench: the same stdio server (server-everything, stdio) behind the
// sidecar's --stdio, supergateway (--stateful, Streamable HTTP) and mcp-proxy (Streamable HTTP),
// the same SDK 1.x clients, in the same run, interleaved. Measures tools/call per second with
// concurrent sessions and the gateway's own CPU per call (its children excluded), sessions per
// second (initialize + one call + DELETE), and the gateway's RSS under that load.
//
// Not pinned, as the MCP scenario is not: a stdio gateway's children run beside it, on the same
// CPUs, and a gateway that starts one child per session pays for that, as in production.

import { connect } from "node:net";
import {
  childPids,
  cpuSeconds,
  freePort,
  median,
  ROOT,
  rssBytes,
  runForJson,
  SIDECAR_NODE_FLAGS,
  sidecarEnv,
  startQuiet,
  stop,
} from "./lib.ts";

const NODE = process.execPath;
const SERVER = [NODE, `${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`, "stdio"];

interface Gateway {
  readonly name: StdioGateway;
  readonly args: (port: number) => string[];
  /** The sidecar runs as its image runs it (compile cache, allocator); the peers as npm starts them. */
  readonly env?: () => Record<string, string>;
}

const GATEWAYS: readonly Gateway[] = [
  {
    name: "sidecar",
    env: sidecarEnv,
    args: (port) => [
      ...SIDECAR_NODE_FLAGS,
      "proxy/cli.ts",
      "--stdio",
      SERVER.join(" "),
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--log-level",
      "warn",
    ],
  },
  {
    name: "supergateway",
    args: (port) => [
      "node_modules/supergateway/dist/index.js",
      "--stdio",
      SERVER.join(" "),
      "--outputTransport",
      "streamableHttp",
      "--stateful",
      "--port",
      String(port),
      "--logLevel",
      "none",
    ],
  },
  {
    name: "mcp-proxy",
    args: (port) => [
      "node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--server",
      "stream",
      "--",
      ...SERVER,
    ],
  },
];

function load(url: string, mode: "calls" | "sessions", concurrency: number, seconds: number) {
  return runForJson<{ count: number; seconds: number; errors: number }>(NODE, [
    "bench/stdio-load.ts",
    url,
    mode,
    String(concurrency),
    String(seconds),
  ]);
}

/** Resolves once something accepts connections on `port` (each gateway answers /mcp differently). */
async function listening(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
}

/** Every process below `pid` (children, grandchildren), for a stop that leaves nothing behind. */
function descendants(pid: number): number[] {
  const direct = childPids(pid);
  return [...direct, ...direct.flatMap(descendants)];
}

export interface StdioSample {
  callsPerSecond: number[];
  cpuUsPerCall: number[];
  sessionsPerSecond: number[];
  rssMB: number[];
  errors: number;
}

/** One gateway's medians over the runs; errors are summed. */
export interface StdioResult {
  callsPerSecond: number;
  cpuUsPerCall: number;
  sessionsPerSecond: number;
  rssMB: number;
  errors: number;
}

export type StdioGateway = "sidecar" | "supergateway" | "mcp-proxy";

export async function stdioScenario(
  runs: number,
  seconds: number,
  concurrency: number,
): Promise<Record<StdioGateway, StdioResult>> {
  const samples = new Map<string, StdioSample>(
    GATEWAYS.map((g) => [
      g.name,
      { callsPerSecond: [], cpuUsPerCall: [], sessionsPerSecond: [], rssMB: [], errors: 0 },
    ]),
  );
  for (let run = 0; run < runs; run++) {
    for (const gateway of GATEWAYS) {
      const port = await freePort();
      const child = startQuiet(NODE, gateway.args(port), gateway.env?.() ?? {});
      const pid = child.pid as number;
      await listening(port);
      const url = `http://127.0.0.1:${port}/mcp`;
      const sample = samples.get(gateway.name) as StdioSample;
      if (run === 0) await load(url, "calls", concurrency, 2); // warm-up (JIT, children)
      const before = cpuSeconds([pid]);
      const calls = await load(url, "calls", concurrency, seconds);
      const cpu = cpuSeconds([pid]) - before;
      sample.rssMB.push(rssBytes(pid) / 2 ** 20);
      const sessions = await load(url, "sessions", concurrency, seconds);
      sample.callsPerSecond.push(calls.count / calls.seconds);
      sample.cpuUsPerCall.push((cpu / Math.max(1, calls.count)) * 1e6);
      sample.sessionsPerSecond.push(sessions.count / sessions.seconds);
      sample.errors += calls.errors + sessions.errors;
      const left = descendants(pid);
      await stop(child);
      for (const orphan of left) {
        try {
          process.kill(orphan, "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
  }
  return Object.fromEntries(
    [...samples].map(([name, s]): [string, StdioResult] => [
      name,
      {
        callsPerSecond: median(s.callsPerSecond),
        cpuUsPerCall: median(s.cpuUsPerCall),
        sessionsPerSecond: median(s.sessionsPerSecond),
        rssMB: median(s.rssMB),
        errors: s.errors,
      },
    ]),
  ) as Record<StdioGateway, StdioResult>;
}
