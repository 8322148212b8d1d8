// The stdio scenario's load: SDK 1.x clients against a Streamable HTTP endpoint that fronts a stdio
// server (the sidecar's --stdio, supergateway, mcp-proxy). Prints {"count","seconds","errors","cpu"}:
// cpu is this client's own CPU seconds, so the bench can say what the load itself costs.
//
//   node bench/stdio-load.ts URL sessions C SECONDS   C loops of initialize + one tools/call + DELETE
//   node bench/stdio-load.ts URL calls C SECONDS      C sessions each calling tools/call in a loop

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, mode, concurrency = "10", seconds = "5"] = process.argv.slice(2);
if (!url || (mode !== "sessions" && mode !== "calls")) {
  process.stderr.write("usage: node bench/stdio-load.ts URL sessions|calls C SECONDS\n");
  process.exit(2);
}
const endpoint = new URL(url);
const until = performance.now() + Number(seconds) * 1000;
// Bounded in count as well as time: no loop outlives either bound.
const MAX_ATTEMPTS = 500_000;
let count = 0;
let errors = 0;
const more = () => performance.now() < until && count + errors < MAX_ATTEMPTS;

async function session(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "bench", version: "1.0.0" });
  client.onerror = () => {};
  const transport = new StreamableHTTPClientTransport(endpoint);
  await client.connect(transport);
  return { client, transport };
}

const call = (client: Client) => client.callTool({ name: "echo", arguments: { message: "bench" } });

async function sessionsLoop(): Promise<void> {
  while (more()) {
    try {
      const { client, transport } = await session();
      await call(client);
      await transport.terminateSession();
      await client.close();
      count++;
    } catch {
      errors++;
    }
  }
}

async function callsLoop(): Promise<void> {
  const { client, transport } = await session();
  while (more()) {
    try {
      await call(client);
      count++;
    } catch {
      errors++;
    }
  }
  await transport.terminateSession().catch(() => {});
  await client.close();
}

const started = performance.now();
const cpuBefore = process.cpuUsage();
const loop = mode === "sessions" ? sessionsLoop : callsLoop;
await Promise.all(Array.from({ length: Number(concurrency) }, loop));
const elapsed = (performance.now() - started) / 1000;
const cpuUsed = process.cpuUsage(cpuBefore);
const cpu = (cpuUsed.user + cpuUsed.system) / 1e6;
process.stdout.write(`${JSON.stringify({ count, seconds: elapsed, errors, cpu })}\n`);
