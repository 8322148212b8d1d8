// The session-routing scenario of npm run bench: what a forwarded request costs. Two "tasks" on
// their own loopback addresses (sidecars on 127.0.0.2 and 127.0.0.3, routing on, the agent
// emulator beside them), one session owned by the first: the same tools/call is sent to the owner
// (served locally) and to the other task (forwarded to the owner), interleaved one by one on
// keep-alive connections, in the same run. Reports p50/p99 of each and the difference.

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { freePort, median, SIDECAR_NODE_FLAGS, sidecarEnv, startQuiet, stop, waitForHttp } from "./lib.ts";

const NODE = process.execPath;
const TOKEN = randomBytes(16).toString("hex");

export interface RoutingResult {
  readonly local: { readonly p50ms: number; readonly p99ms: number };
  readonly forwarded: { readonly p50ms: number; readonly p99ms: number };
  readonly calls: number;
  readonly errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

export async function routingScenario(runs: number, callsPerRun: number): Promise<RoutingResult> {
  const dir = mkdtempSync(join(tmpdir(), "mcp-sidecar-bench-routing-"));
  const secrets = join(dir, "secrets.yaml");
  writeFileSync(secrets, `secrets:\n  bench/session-key: "${randomBytes(32).toString("base64url")}"\n`);
  const agentPort = await freePort();
  const agent = startQuiet(
    NODE,
    ["bin/mcp-sidecar.js", "agent-emulator", "--secrets", secrets, "--port", String(agentPort)],
    {
      AWS_TOKEN: TOKEN,
    },
  );
  const serverPort = await freePort();
  const server = startQuiet(NODE, ["server/main.ts", "--port", String(serverPort), "--json-response"]);
  await Promise.all([
    waitForHttp(`http://127.0.0.1:${serverPort}/health`),
    waitForHttp(`http://127.0.0.1:${agentPort}/ping`),
  ]);
  const port = await freePort();
  const tasks = ["127.0.0.2", "127.0.0.3"];
  const sidecars = tasks.map((address) =>
    startQuiet(
      NODE,
      [
        ...SIDECAR_NODE_FLAGS,
        "proxy/cli.ts",
        ...["--upstream", `http://127.0.0.1:${serverPort}`, "--port", String(port), "--host", address],
        ...["--secrets-agent", `http://127.0.0.1:${agentPort}`, "--log-level", "warn"],
        ...["--session-routing", "on", "--session-secret", "bench/session-key"],
        ...["--advertise-url", `http://${address}`, "--peer-cidrs", "127.0.0.0/8"],
      ],
      { ...sidecarEnv(), AWS_TOKEN: TOKEN },
    ),
  );
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
  try {
    await Promise.all(tasks.map((address) => waitForHttp(`http://${address}:${port}/ready`)));
    const [owner, other] = tasks.map((address) => `http://${address}:${port}/mcp`) as [string, string];
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    const init = await request(owner, {
      dispatcher,
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "bench", version: "1" },
        },
      }),
    });
    await init.body.text();
    const session = String(init.headers["mcp-session-id"]);
    const sessionHeaders = { ...headers, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" };
    await (
      await request(owner, {
        dispatcher,
        method: "POST",
        headers: sessionHeaders,
        body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      })
    ).body.text();
    let errors = 0;
    const call = async (url: string, id: number): Promise<number> => {
      const started = performance.now();
      const response = await request(url, {
        dispatcher,
        method: "POST",
        headers: sessionHeaders,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id,
          method: "tools/call",
          params: { name: "echo", arguments: { message: "hi" } },
        }),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200 || !text.includes('"result"')) errors++;
      return performance.now() - started;
    };
    const p50 = { local: [] as number[], forwarded: [] as number[] };
    const p99 = { local: [] as number[], forwarded: [] as number[] };
    let id = 1;
    // Warm both paths (JIT, connections to the owner).
    for (let i = 0; i < 200; i++) {
      await call(owner, id++);
      await call(other, id++);
    }
    for (let run = 0; run < runs; run++) {
      const local: number[] = [];
      const forwarded: number[] = [];
      for (let i = 0; i < callsPerRun; i++) {
        local.push(await call(owner, id++));
        forwarded.push(await call(other, id++));
      }
      for (const [name, values] of [
        ["local", local],
        ["forwarded", forwarded],
      ] as const) {
        values.sort((a, b) => a - b);
        p50[name].push(percentile(values, 0.5));
        p99[name].push(percentile(values, 0.99));
      }
    }
    return {
      local: { p50ms: median(p50.local), p99ms: median(p99.local) },
      forwarded: { p50ms: median(p50.forwarded), p99ms: median(p99.forwarded) },
      calls: runs * callsPerRun,
      errors,
    };
  } finally {
    await dispatcher.close();
    await Promise.all([...sidecars.map(stop), stop(server), stop(agent)]);
    rmSync(dir, { recursive: true, force: true });
  }
}
