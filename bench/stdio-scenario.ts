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
  reapedChildrenCpuSeconds,
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
  return runForJson<{ count: number; seconds: number; errors: number; cpu: number }>(NODE, [
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

/**
 * CPU seconds of every process `pid` started, running or exited: the servers' own cost, which
 * whatever fronts them cannot save. (A process that exits between the two reads can be missed or
 * counted twice: a few milliseconds in a run.)
 */
function childrenCpuSeconds(pid: number): number {
  let running = 0;
  for (const child of descendants(pid)) {
    try {
      running += cpuSeconds([child]);
    } catch {
      // exited meanwhile: its parent's reaped-children time has it
    }
  }
  return running + reapedChildrenCpuSeconds(pid);
}

/** What the load (the SDK client) and the servers themselves cost, which no gateway can save. */
interface Rest {
  /** CPU of the load's client and of the gateway's children, per call and per session. */
  clientUsPerCall: number;
  childrenUsPerCall: number;
  clientUsPerSession: number;
  childrenUsPerSession: number;
}

export interface StdioSample {
  callsPerSecond: number[];
  cpuUsPerCall: number[];
  sessionsPerSecond: number[];
  rssMB: number[];
  errors: number;
  rest: { [K in keyof Rest]: number[] };
}

/** One gateway's medians over the runs; errors are summed. */
export interface StdioResult extends Rest {
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
      {
        callsPerSecond: [],
        cpuUsPerCall: [],
        sessionsPerSecond: [],
        rssMB: [],
        errors: 0,
        rest: {
          clientUsPerCall: [],
          childrenUsPerCall: [],
          clientUsPerSession: [],
          childrenUsPerSession: [],
        },
      },
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
      const childrenBefore = childrenCpuSeconds(pid);
      const calls = await load(url, "calls", concurrency, seconds);
      const cpu = cpuSeconds([pid]) - before;
      const childrenForCalls = childrenCpuSeconds(pid) - childrenBefore;
      sample.rssMB.push(rssBytes(pid) / 2 ** 20);
      const childrenBeforeSessions = childrenCpuSeconds(pid);
      const sessions = await load(url, "sessions", concurrency, seconds);
      const childrenForSessions = childrenCpuSeconds(pid) - childrenBeforeSessions;
      const perUs = (cpuSeconds: number, count: number) => (cpuSeconds / Math.max(1, count)) * 1e6;
      sample.rest.clientUsPerCall.push(perUs(calls.cpu, calls.count));
      sample.rest.childrenUsPerCall.push(perUs(childrenForCalls, calls.count));
      sample.rest.clientUsPerSession.push(perUs(sessions.cpu, sessions.count));
      sample.rest.childrenUsPerSession.push(perUs(childrenForSessions, sessions.count));
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
        clientUsPerCall: median(s.rest.clientUsPerCall),
        childrenUsPerCall: median(s.rest.childrenUsPerCall),
        clientUsPerSession: median(s.rest.clientUsPerSession),
        childrenUsPerSession: median(s.rest.childrenUsPerSession),
      },
    ]),
  ) as Record<StdioGateway, StdioResult>;
}
