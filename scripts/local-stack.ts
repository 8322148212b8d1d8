#!/usr/bin/env node
// `npm start`: the local stack, shaped like an ECS task. The reference MCP server on 127.0.0.1:3000,
// the Secrets Manager Agent emulator on 127.0.0.1:2773 (serving a secrets file made for this run,
// with random values), and the sidecar on 127.0.0.1:8080 in front of the server: clients must
// present the API key, the server gets its own key injected as a header and as a file. Each is a
// real process with its JSON logs shown. Ctrl-C stops them in ECS's order: the sidecar first (it
// drains), then the server and the agent.
//
//   npm start                       run until Ctrl-C
//   npm start -- --check            start, call tools through the sidecar, stop, exit 0 (CI smoke test)
//   npm start -- --port 9090 --server-port 4000 --agent-port 2774

import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8080" },
    "server-port": { type: "string", default: "3000" },
    "agent-port": { type: "string", default: "2773" },
    check: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write(
    "Usage: npm start -- [--port 8080] [--server-port 3000] [--agent-port 2773] [--check]\n",
  );
  process.exit(0);
}
for (const name of ["port", "server-port", "agent-port"] as const) {
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

function start(name: string, script: string, args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
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

// Secrets for this run only: random values in a private temp dir, removed on exit.
const work = mkdtempSync(join(tmpdir(), "mcp-sidecar-local-"));
const secretsFile = join(work, "secrets.yaml");
const upstreamKeyFile = join(work, "upstream-key");
const apiKey = `local-${randomBytes(16).toString("hex")}`;
const upstreamKey = `upstream-${randomBytes(16).toString("hex")}`;
const agentToken = randomBytes(24).toString("hex");
writeFileSync(
  secretsFile,
  `# Made by npm start for this run; rotate with the command it prints.\nsecrets:\n  mcp-sidecar/local/api-key: "${apiKey}"\n  mcp-sidecar/local/upstream-key: "${upstreamKey}"\n`,
  { mode: 0o600 },
);
const agentEnv = { AWS_TOKEN: agentToken };

const agent = start(
  "agent",
  "bin/mcp-sidecar.js",
  [
    "agent-emulator",
    "--secrets",
    secretsFile,
    "--config",
    "agent/config.toml",
    "--port",
    values["agent-port"],
  ],
  agentEnv,
);
const server = start("server", "server/main.ts", [
  "--port",
  values["server-port"],
  "--secret-header",
  "X-Upstream-Key",
  "--secret-file",
  upstreamKeyFile,
]);
await Promise.all([server.waitForLog("listening"), agent.waitForLog("listening")]);
const sidecar = start(
  "sidecar",
  "proxy/cli.ts",
  [
    "--upstream",
    `http://127.0.0.1:${values["server-port"]}`,
    "--port",
    values.port,
    "--host",
    "127.0.0.1",
    "--secrets-agent",
    `http://127.0.0.1:${values["agent-port"]}`,
    "--auth-secret",
    "mcp-sidecar/local/api-key",
    "--inject-header",
    "X-Upstream-Key=mcp-sidecar/local/upstream-key",
    "--secret-file",
    `${upstreamKeyFile}=mcp-sidecar/local/upstream-key`,
  ],
  agentEnv,
);

let stopping = false;
async function stop(): Promise<number> {
  if (stopping) return 1;
  stopping = true;
  sidecar.process.kill("SIGTERM");
  const sidecarCode = await sidecar.exited;
  server.process.kill("SIGTERM");
  agent.process.kill("SIGTERM");
  const [serverCode, agentCode] = await Promise.all([server.exited, agent.exited]);
  rmSync(work, { recursive: true, force: true });
  return sidecarCode === 0 && serverCode === 0 && agentCode === 0 ? 0 : 1;
}

try {
  await sidecar.waitForLog("sidecar listening");
} catch (error) {
  process.stderr.write(`local-stack: ${(error as Error).message}\n`);
  // waitForLog fails only when the sidecar has exited (a bad flag, a port in use): stop the rest.
  await stop();
  process.exit(1);
}

const mcpUrl = `http://127.0.0.1:${values.port}/mcp`;
const readyUrl = `http://127.0.0.1:${values.port}/ready`;
// Ready once the upstream answers and both secrets are loaded from the agent.
let ready = { status: "not_ready", reasons: [] as string[] };
for (let attempt = 0; attempt < 100 && ready.status !== "ready"; attempt++) {
  ready = (await fetch(readyUrl).then((r) => r.json())) as typeof ready;
  if (ready.status !== "ready") await new Promise((resolve) => setTimeout(resolve, 100));
}
process.stdout.write(
  [
    "",
    `  MCP endpoint (through the sidecar): ${mcpUrl}`,
    `  API key for this run:               ${apiKey}`,
    `  Readiness: ${readyUrl} -> ${ready.status}${ready.reasons.length ? ` (${ready.reasons.join("; ")})` : ""}`,
    "  Try it:",
    `    npx mcp-inspector --cli ${mcpUrl} --transport http --header "Authorization: Bearer ${apiKey}" --method tools/list`,
    `    npx mcp-inspector --cli ${mcpUrl} --transport http --header "Authorization: Bearer ${apiKey}" --method tools/call --tool-name secret_fingerprint`,
    "  Rotate the server's key (the agent's ttl_seconds is 30 s, the sidecar polls every 30 s):",
    `    npx mcp-sidecar agent-emulator rotate --secrets ${secretsFile} mcp-sidecar/local/upstream-key`,
    "  Ctrl-C drains the sidecar, then stops the server and the agent.",
    "",
  ].join("\n"),
);

if (values.check) {
  const post = (body: unknown, key?: string) =>
    fetch(mcpUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
      body: JSON.stringify(body),
    });
  const initialize = {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "local-stack-check", version: "1" },
    },
  };
  const refused = await post(initialize);
  await refused.text();
  const response = await post(initialize, apiKey);
  const text = await response.text();
  const session = response.headers.get("mcp-session-id") ?? "";
  const fingerprintCall = await fetch(mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${apiKey}`,
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "secret_fingerprint", arguments: {} },
    }),
  }).then((r) => r.text());
  const expected = createHash("sha256").update(upstreamKey).digest("hex").slice(0, 12);
  const delivered =
    fingerprintCall.includes(`\\"header\\":\\"${expected}\\"`) &&
    fingerprintCall.includes(`\\"file\\":\\"${expected}\\"`);
  const ok =
    refused.status === 401 &&
    response.status === 200 &&
    text.includes('"serverInfo"') &&
    ready.status === "ready" &&
    delivered;
  process.stdout.write(
    `local-stack check: without key -> ${refused.status}; initialize with key -> ${response.status}; ready=${ready.status}; upstream key delivered by header and file: ${delivered}\n`,
  );
  const code = await stop();
  process.exit(ok && code === 0 ? 0 : 1);
}

process.on("SIGINT", () => void stop().then((code) => process.exit(code)));
process.on("SIGTERM", () => void stop().then((code) => process.exit(code)));
const first = await Promise.race([sidecar, server, agent].map((child) => child.exited.then(() => child)));
if (!stopping) {
  process.stderr.write(`local-stack: ${first.name} exited unexpectedly; stopping\n`);
  process.exit((await stop()) || 1);
}
