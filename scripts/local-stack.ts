#!/usr/bin/env node
// `npm start`: the local stack. The reference MCP server on 127.0.0.1:3000 and the sidecar in front
// of it on 127.0.0.1:8080, each a real process with its JSON logs shown. Ctrl-C stops them in the
// order ECS does: the sidecar first (it drains), then the server.
//
//   npm start                       run until Ctrl-C
//   npm start -- --check            start, call a tool through the sidecar, stop, exit 0 (CI smoke test)
//   npm start -- --port 9090 --server-port 4000

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8080" },
    "server-port": { type: "string", default: "3000" },
    check: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write("Usage: npm start -- [--port 8080] [--server-port 3000] [--check]\n");
  process.exit(0);
}
for (const name of ["port", "server-port"] as const) {
  const port = Number(values[name]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    process.stderr.write(`local-stack: --${name} "${values[name]}" is not a port (1-65535)\n`);
    process.exit(2);
  }
}

const root = new URL("..", import.meta.url);

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  waitForLog(msg: string): Promise<Record<string, unknown>>;
}

function start(name: string, script: string, args: string[]): Child {
  const child = spawn(process.execPath, [script, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const waiters = new Map<string, (line: Record<string, unknown>) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      process.stdout.write(`[${name}] ${line}\n`);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        const waiter = waiters.get(String(parsed.msg));
        if (waiter) waiter(parsed);
      } catch {
        // not a JSON line: shown above, nothing to wait on
      }
    });
  }
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    name,
    process: child,
    exited,
    waitForLog: (msg) =>
      Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.set(msg, resolve)),
        exited.then((code) => {
          throw new Error(`${name} exited with code ${code} before logging "${msg}"`);
        }),
      ]),
  };
}

const server = start("server", "server/main.ts", ["--port", values["server-port"]]);
await server.waitForLog("listening");
const sidecar = start("sidecar", "proxy/cli.ts", [
  "--upstream",
  `http://127.0.0.1:${values["server-port"]}`,
  "--port",
  values.port,
  "--host",
  "127.0.0.1",
]);

let stopping = false;
async function stop(): Promise<number> {
  if (stopping) return 1;
  stopping = true;
  sidecar.process.kill("SIGTERM");
  const sidecarCode = await sidecar.exited;
  server.process.kill("SIGTERM");
  const serverCode = await server.exited;
  return sidecarCode === 0 && serverCode === 0 ? 0 : 1;
}

try {
  await sidecar.waitForLog("sidecar listening");
} catch (error) {
  process.stderr.write(`local-stack: ${(error as Error).message}\n`);
  server.process.kill("SIGTERM");
  await server.exited;
  process.exit(1);
}

const mcpUrl = `http://127.0.0.1:${values.port}/mcp`;
const ready = await fetch(`http://127.0.0.1:${values.port}/ready`).then(
  (r) => r.json() as Promise<{ status: string }>,
);
process.stdout.write(
  [
    "",
    `  MCP endpoint (through the sidecar): ${mcpUrl}`,
    `  Readiness: http://127.0.0.1:${values.port}/ready -> ${ready.status}`,
    "  Try it:",
    `    npx mcp-inspector --cli ${mcpUrl} --transport http --method tools/list`,
    `    npx mcp-inspector --cli ${mcpUrl} --transport http --method tools/call --tool-name echo --tool-arg message=hello`,
    "  Ctrl-C drains the sidecar, then stops the server.",
    "",
  ].join("\n"),
);

if (values.check) {
  const response = await fetch(mcpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "local-stack-check", version: "1" },
      },
    }),
  });
  const text = await response.text();
  const ok = response.status === 200 && text.includes('"serverInfo"') && ready.status === "ready";
  process.stdout.write(
    `local-stack check: initialize through the sidecar -> ${response.status}; ready=${ready.status}\n`,
  );
  const code = await stop();
  process.exit(ok && code === 0 ? 0 : 1);
}

process.on("SIGINT", () => void stop().then((code) => process.exit(code)));
process.on("SIGTERM", () => void stop().then((code) => process.exit(code)));
const first = await Promise.race([sidecar.exited.then(() => sidecar), server.exited.then(() => server)]);
if (!stopping) {
  process.stderr.write(`local-stack: ${first.name} exited unexpectedly; stopping\n`);
  process.exit((await stop()) || 1);
}
