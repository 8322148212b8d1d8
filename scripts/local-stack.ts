#!/usr/bin/env node
// `npm start`: the local stack, shaped like an ECS task. The reference MCP server on 127.0.0.1:3000,
// the Secrets Manager Agent emulator on 127.0.0.1:2773 (serving a secrets file made for this run,
// with random values), and the sidecar on 127.0.0.1:8080 in front of the server: clients must
// present the API key, the server gets its own key injected as a header and as a file. Each is a
// real process, in its own process group, with its JSON logs shown. Ctrl-C stops them in ECS's
// order: the sidecar first (it drains; calls in flight finish), then the server and the agent.
//
//   npm start                       run until Ctrl-C
//   npm start -- --check            start, call tools through the sidecar, stop, exit 0 (CI smoke test)
//   npm start -- --port 9090 --server-port 4000 --agent-port 2774

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkStack } from "./local-stack/check.ts";
import { type Child, ChildExitedError, startChild, stopGracefully } from "./local-stack/children.ts";
import { REPEAT_WINDOW_MS, stopSignalHandler } from "./local-stack/signals.ts";

const HELP = `Usage: npm start -- [--port 8080] [--server-port 3000] [--agent-port 2773] [--check]

  --port PORT          The sidecar's port (the MCP endpoint)
  --server-port PORT   The reference MCP server's port
  --agent-port PORT    The Secrets Manager Agent emulator's port
  --check              Start, check 401 / initialize / both secret deliveries, stop, exit 0

Ctrl-C (or SIGTERM, SIGHUP) stops the stack in ECS's order: the sidecar drains (calls in flight
finish), then the server and the agent stop; exit 0 when all of them stopped cleanly. Ctrl-C again,
${REPEAT_WINDOW_MS / 1000} s or more after the first, kills every process at once (exit 1).`;

const PORT_FLAGS = { sidecar: "port", server: "server-port", agent: "agent-port" } as const;

const OPTIONS = {
  port: { type: "string", default: "8080" },
  "server-port": { type: "string", default: "3000" },
  "agent-port": { type: "string", default: "2773" },
  check: { type: "boolean", default: false },
  help: { type: "boolean", short: "h" },
} as const;
let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];
try {
  ({ values } = parseArgs({ options: OPTIONS }));
} catch (error) {
  process.stderr.write(`local-stack: ${(error as Error).message} (see npm start -- --help)\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
for (const name of Object.values(PORT_FLAGS)) {
  const port = Number(values[name]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    process.stderr.write(`local-stack: --${name} "${values[name]}" is not a port (1-65535)\n`);
    process.exit(2);
  }
}

const root = new URL("..", import.meta.url);
/** ECS's default stopTimeout: SIGKILL 30 s after SIGTERM (the sidecar's 25 s drain fits in it). */
const STOP_TIMEOUT_MS = 30_000;
const say = (text: string) => process.stderr.write(`local-stack: ${text}\n`);

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

const children: Child[] = [];
let stopping: Promise<number> | undefined;
let forced = false;

function launch(name: keyof typeof PORT_FLAGS, script: string, args: string[], env = {}): Child {
  const child = startChild(name, script, args, {
    cwd: root,
    env,
    onLine: (line) => process.stdout.write(`[${name}] ${line}\n`),
  });
  children.push(child);
  say(`started the ${name}: pid ${child.pid}`);
  return child;
}

/** Stops every child in ECS's order; resolves 0 when all of them exited 0. Idempotent. */
function stop(): Promise<number> {
  stopping ??= (async () => {
    // The sidecar first, and the rest only once it has drained and exited: its calls in flight
    // still need the server, and its secrets the agent.
    const sidecar = children.find((child) => child.name === "sidecar");
    const codes = sidecar ? [await stopGracefully(sidecar, STOP_TIMEOUT_MS)] : [];
    if (sidecar) say(`the sidecar exited (code ${codes[0]}); stopping the server and the agent`);
    const rest = children.filter((child) => child !== sidecar);
    codes.push(...(await Promise.all(rest.map((child) => stopGracefully(child, STOP_TIMEOUT_MS)))));
    rmSync(work, { recursive: true, force: true });
    return !forced && codes.every((code) => code === 0) ? 0 : 1;
  })();
  return stopping;
}

function exitAfterStop(failed: boolean): void {
  void stop().then((code) => process.exit(failed ? 1 : code));
}

// Whatever ends this process (an uncaught error included), no child outlives it.
process.on("exit", () => {
  for (const child of children) child.signal("SIGKILL");
});
const onSignal = stopSignalHandler({
  stop: () => {
    say("stopping: the sidecar drains its calls in flight, then the server and the agent stop");
    exitAfterStop(false);
  },
  armed: () => say("still stopping; Ctrl-C again kills every process now"),
  force: () => {
    forced = true;
    say("killing every process now");
    for (const child of children) child.signal("SIGKILL");
  },
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);

const anyExit = () => Promise.race(children.map((child) => child.exited.then(() => child)));
const mcpUrl = `http://127.0.0.1:${values.port}/mcp`;
const readyUrl = `http://127.0.0.1:${values.port}/ready`;
type Readiness = { status: string; reasons: string[] };

/** Ready once the upstream answers and both secrets are loaded from the agent (or ~10 s passed). */
async function waitUntilReady(): Promise<Readiness> {
  let ready: Readiness = { status: "not_ready", reasons: [] };
  for (let attempt = 0; attempt < 100 && ready.status !== "ready" && !stopping; attempt++) {
    try {
      ready = (await fetch(readyUrl).then((r) => r.json())) as Readiness;
    } catch (error) {
      // The sidecar has just said it listens: a failure here means it died, which startUp sees.
      ready = { status: "not_ready", reasons: [(error as Error).message] };
    }
    if (ready.status !== "ready") await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return ready;
}

/** Starts the three; undefined when a signal stopped the stack meanwhile. */
async function startUp(): Promise<Readiness | undefined> {
  const agent = launch(
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
  const server = launch("server", "server/main.ts", [
    "--port",
    values["server-port"],
    "--secret-header",
    "X-Upstream-Key",
    "--secret-file",
    upstreamKeyFile,
  ]);
  await Promise.all([server.waitForLog("listening"), agent.waitForLog("listening")]);
  if (stopping) return undefined;
  const sidecar = launch(
    "sidecar",
    "proxy/cli.ts",
    [
      ...["--upstream", `http://127.0.0.1:${values["server-port"]}`, "--port", values.port],
      ...["--host", "127.0.0.1", "--secrets-agent", `http://127.0.0.1:${values["agent-port"]}`],
      ...["--auth-secret", "mcp-sidecar/local/api-key"],
      ...["--inject-header", "X-Upstream-Key=mcp-sidecar/local/upstream-key"],
      ...["--secret-file", `${upstreamKeyFile}=mcp-sidecar/local/upstream-key`],
    ],
    agentEnv,
  );
  await sidecar.waitForLog("sidecar listening");
  const died = anyExit().then((child) => {
    throw new ChildExitedError(child, null, "the stack was ready");
  });
  const ready = await Promise.race([waitUntilReady(), died]);
  return stopping ? undefined : ready;
}

/** Why start-up failed, naming the port and the flag that changes it when a port was the cause. */
function startupFailure(child: Child): string {
  const flag = PORT_FLAGS[child.name as keyof typeof PORT_FLAGS];
  const failure = child.listenFailure;
  if (!flag || !failure) return `the ${child.name} exited during start-up (its log is above)`;
  const port = values[flag];
  const err = failure.err as { message?: string } | undefined;
  const cause = JSON.stringify(failure).includes("EADDRINUSE")
    ? `port ${port} is taken`
    : `port ${port}: ${String(failure.error ?? err?.message ?? "cannot listen")}`;
  return `${cause}: the ${child.name} cannot listen on 127.0.0.1:${port}. Free it, or choose another port with --${flag} (npm start -- --${flag} PORT)`;
}

async function main(): Promise<void> {
  let ready: Readiness | undefined;
  try {
    ready = await startUp();
  } catch (error) {
    if (stopping) return; // a signal is stopping the stack: its handler exits
    if (!(error instanceof ChildExitedError)) throw error;
    say(startupFailure(error.child));
    exitAfterStop(true);
    return;
  }
  if (!ready) return;
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
      "  Ctrl-C drains the sidecar (calls in flight finish), then stops the server and the agent.",
      `  Ctrl-C again, ${REPEAT_WINDOW_MS / 1000} s or more after the first, kills every process at once.`,
      "",
    ].join("\n"),
  );

  if (values.check) {
    try {
      const result = await checkStack({ mcpUrl, apiKey, upstreamKey, ready: ready.status === "ready" });
      process.stdout.write(`${result.summary}\n`);
      exitAfterStop(!result.ok);
    } catch (error) {
      say(`check failed: ${(error as Error).message}`);
      exitAfterStop(true);
    }
    return;
  }
  const first = await anyExit();
  if (stopping) return;
  say(`the ${first.name} exited unexpectedly; stopping the rest`);
  exitAfterStop(true);
}

await main();
