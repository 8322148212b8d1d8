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
//   npm start -- --replicas 3        three "tasks" behind HAProxy, sessions routed between them

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkStack } from "./local-stack/check.ts";
import {
  type Child,
  ChildExitedError,
  startChild,
  startExecutable,
  stopGracefully,
} from "./local-stack/children.ts";
import { haproxyConfig, MAX_REPLICAS, replicasOf, routingFlags } from "./local-stack/replicas.ts";
import { REPEAT_WINDOW_MS, stopSignalHandler } from "./local-stack/signals.ts";

const HELP = `Usage: npm start -- [--port 8080] [--server-port 3000] [--agent-port 2773] [--replicas 1] [--check]

  --port PORT          The sidecar's port (the MCP endpoint)
  --server-port PORT   The reference MCP server's port (with --replicas, each task's, on its address)
  --agent-port PORT    The Secrets Manager Agent emulator's port
  --replicas N         N "tasks" (server + sidecar each, on 127.0.0.2, .3, ...) behind HAProxy
                       round-robin on 127.0.0.1:PORT, sessions routed between them (1-${MAX_REPLICAS};
                       needs haproxy: apt-get install haproxy)
  --check              Start, check 401 / initialize / both secret deliveries, stop, exit 0

Ctrl-C (or SIGTERM, SIGHUP) stops the stack in ECS's order: the sidecar drains (calls in flight
finish), then the server and the agent stop; exit 0 when all of them stopped cleanly. Ctrl-C again,
${REPEAT_WINDOW_MS / 1000} s or more after the first, kills every process at once (exit 1).`;

const PORT_FLAGS = { sidecar: "port", server: "server-port", agent: "agent-port" } as const;

const OPTIONS = {
  port: { type: "string", default: "8080" },
  "server-port": { type: "string", default: "3000" },
  "agent-port": { type: "string", default: "2773" },
  replicas: { type: "string", default: "1" },
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

const replicaCount = Number(values.replicas);
if (!Number.isInteger(replicaCount) || replicaCount < 1 || replicaCount > MAX_REPLICAS) {
  process.stderr.write(`local-stack: --replicas "${values.replicas}" is not 1-${MAX_REPLICAS}\n`);
  process.exit(2);
}
const replicas = replicaCount > 1 ? replicasOf(replicaCount) : undefined;

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
  `# Made by npm start for this run; rotate with the command it prints.\nsecrets:\n  mcp-sidecar/local/api-key: "${apiKey}"\n  mcp-sidecar/local/upstream-key: "${upstreamKey}"\n  mcp-sidecar/local/session-key: "${randomBytes(32).toString("base64url")}"\n`,
  { mode: 0o600 },
);
const agentEnv = { AWS_TOKEN: agentToken };

const children: Child[] = [];
let stopping: Promise<number> | undefined;
let forced = false;

function launch(name: string, script: string, args: string[], env = {}): Child {
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
    // The sidecars first, and the rest only once they have drained and exited: their calls in
    // flight still need the servers, and their secrets the agent.
    const sidecars = children.filter((child) => child.name.startsWith("sidecar"));
    const codes = await Promise.all(sidecars.map((sidecar) => stopGracefully(sidecar, STOP_TIMEOUT_MS)));
    if (sidecars.length === 1)
      say(`the sidecar exited (code ${codes[0]}); stopping the server and the agent`);
    else if (sidecars.length > 1)
      say(
        `the sidecars exited (codes ${codes.join(", ")}); stopping the servers, the agent and the balancer`,
      );
    const rest = children.filter((child) => !sidecars.includes(child));
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
    say(
      replicas
        ? "stopping: the sidecars drain their calls in flight, then the servers, the agent and the balancer stop"
        : "stopping: the sidecar drains its calls in flight, then the server and the agent stop",
    );
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
/** Each sidecar's own /ready (with --replicas, the balancer's would answer for one of them). */
const readyUrls = replicas
  ? [readyUrl, ...replicas.map((replica) => `http://${replica.address}:${values.port}/ready`)]
  : [readyUrl];
type Readiness = { status: string; reasons: string[] };

/** Ready once the upstream answers and both secrets are loaded from the agent (or ~10 s passed). */
async function waitUntilReady(): Promise<Readiness> {
  let ready: Readiness = { status: "not_ready", reasons: [] };
  for (let attempt = 0; attempt < 100 && ready.status !== "ready" && !stopping; attempt++) {
    try {
      const all = await Promise.all(
        readyUrls.map((url) => fetch(url).then((r) => r.json() as Promise<Readiness>)),
      );
      ready = all.find((one) => one.status !== "ready") ?? (all[0] as Readiness);
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
  if (replicas) return startReplicas(agent);
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

/**
 * --replicas N: a server and a sidecar per task, both on the task's own address (the same ports in
 * every task, as in ECS), the sidecars routing sessions, and HAProxy in front on the stack's port.
 */
async function startReplicas(agent: Child): Promise<Readiness | undefined> {
  const all = replicas ?? [];
  // Each task's server reads its own copy of the key the sidecar delivers (as a file and a header).
  const keyFile = (index: number) => (index === 0 ? upstreamKeyFile : `${upstreamKeyFile}-${index + 1}`);
  const servers = all.map((replica) =>
    launch(`server-${replica.index + 1}`, "server/main.ts", [
      ...["--host", replica.address, "--allowed-hosts", replica.address, "--port", values["server-port"]],
      ...["--secret-header", "X-Upstream-Key", "--secret-file", keyFile(replica.index)],
    ]),
  );
  await Promise.all([
    agent.waitForLog("listening"),
    ...servers.map((server) => server.waitForLog("listening")),
  ]);
  if (stopping) return undefined;
  const sidecars = all.map((replica) =>
    launch(
      `sidecar-${replica.index + 1}`,
      "proxy/cli.ts",
      [
        ...["--upstream", `http://${replica.address}:${values["server-port"]}`, "--port", values.port],
        ...["--host", replica.address, "--secrets-agent", `http://127.0.0.1:${values["agent-port"]}`],
        ...["--auth-secret", "mcp-sidecar/local/api-key"],
        ...["--inject-header", "X-Upstream-Key=mcp-sidecar/local/upstream-key"],
        ...["--secret-file", `${keyFile(replica.index)}=mcp-sidecar/local/upstream-key`],
        ...routingFlags(replica, "mcp-sidecar/local/session-key"),
      ],
      agentEnv,
    ),
  );
  await Promise.all(sidecars.map((sidecar) => sidecar.waitForLog("sidecar listening")));
  const config = join(work, "haproxy.cfg");
  writeFileSync(config, haproxyConfig(Number(values.port), Number(values.port), all));
  let balancer: Child;
  try {
    balancer = startExecutable("balancer", "haproxy", ["-db", "-f", config], {
      cwd: root,
      env: {},
      stopSignal: "SIGUSR1",
      onLine: (line) => process.stdout.write(`[balancer] ${line}\n`),
    });
  } catch {
    throw new StartupProblem(
      "cannot run haproxy, the balancer of --replicas: install it (apt-get install haproxy)",
    );
  }
  children.push(balancer);
  say(`started the balancer: pid ${balancer.pid}`);
  const died = anyExit().then((child) => {
    throw new ChildExitedError(child, null, "the stack was ready");
  });
  const ready = await Promise.race([waitUntilReady(), died]);
  return stopping ? undefined : ready;
}

/** A start-up failure that is not a child's exit, said as it is. */
class StartupProblem extends Error {}

/** Why start-up failed, naming the port and the flag that changes it when a port was the cause. */
function startupFailure(child: Child): string {
  if (child.name === "balancer")
    return `the balancer (HAProxy) exited during start-up: is haproxy installed (apt-get install haproxy), and port ${values.port} free on 127.0.0.1? Its log is above`;
  const flag = PORT_FLAGS[child.name.replace(/-\d+$/, "") as keyof typeof PORT_FLAGS];
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
    if (error instanceof StartupProblem) {
      say(error.message);
      exitAfterStop(true);
      return;
    }
    if (!(error instanceof ChildExitedError)) throw error;
    say(startupFailure(error.child));
    exitAfterStop(true);
    return;
  }
  if (!ready) return;
  process.stdout.write(
    [
      "",
      replicas
        ? `  MCP endpoint (HAProxy, round-robin over ${replicas.length} tasks, sessions routed): ${mcpUrl}`
        : `  MCP endpoint (through the sidecar): ${mcpUrl}`,
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
