// Several "tasks" on one machine, as ECS runs them behind an ALB: each task is a reference server and
// a sidecar process bound to its own loopback address (127.0.0.2, .3, ...), and a real HAProxy from
// Debian balances every request round-robin across them, with no stickiness. HAProxy's runtime API
// (an admin socket) registers and deregisters targets as a rolling deploy does.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_TOKEN } from "./emulator.ts";
import { freePort } from "./net.ts";
import { jsonLine, node, type Started, startReferenceServer } from "./processes.ts";

export interface Task {
  readonly address: string;
  readonly sidecar: Started;
  readonly server: Started;
  /** The sidecar's URL on its own address. */
  readonly url: URL;
  /** Its slot in the balancer, while registered. */
  slot: number | undefined;
}

export interface TaskOptions {
  readonly agent: URL;
  /** Session routing on (with a session secret named `session-key`), or off: the baseline. */
  readonly routing: boolean;
  /** The sidecars' port, the same for every task (as ECS tasks of one service have). */
  readonly port: number;
  readonly args?: readonly string[];
}

export async function startTask(address: string, options: TaskOptions): Promise<Task> {
  const server = await startReferenceServer();
  const routing = options.routing
    ? [
        "--session-routing",
        "on",
        "--session-secret",
        "session-key",
        "--advertise-url",
        `http://${address}`,
        "--peer-cidrs",
        "127.0.0.0/8",
      ]
    : [];
  const sidecar = node(
    "proxy/cli.ts",
    [
      "--upstream",
      server.origin,
      "--port",
      String(options.port),
      "--host",
      address,
      "--secrets-agent",
      options.agent.origin,
      "--drain-delay",
      "0s",
      "--log-level",
      "info",
      ...routing,
      ...(options.args ?? []),
    ],
    { AWS_TOKEN: AGENT_TOKEN },
  );
  const line = await sidecar.waitForLine(
    (l) => jsonLine(l)?.msg === "sidecar listening",
    "the sidecar listening",
  );
  const url = new URL(String(jsonLine(line)?.url));
  // Ready: the session key loaded (routing answers 503 until then).
  for (let attempt = 0; attempt < 200; attempt++) {
    const response = await fetch(new URL("/ready", url)).catch(() => undefined);
    if (response?.status === 200) break;
    await response?.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { address, sidecar, server: server.proc, url, slot: undefined };
}

/** Stops a task as ECS does: SIGTERM to the sidecar, which drains; the server after it. */
export async function stopTask(task: Task): Promise<{ code: number | null }> {
  task.sidecar.kill("SIGTERM");
  const exit = await task.sidecar.exited;
  task.server.kill("SIGTERM");
  await task.server.exited;
  return exit;
}

const SLOTS = 6;
/** The deregistration delay of this "ALB" (ECS's default is 300 s; McpService sets drainSeconds). */
const DEREGISTRATION_DELAY_MS = 500;

export interface Balancer {
  readonly url: URL;
  register(task: Task): Promise<void>;
  /** No new requests to it (an ALB target draining); requests already sent run on. */
  deregister(task: Task): Promise<void>;
  stop(): Promise<void>;
}

export async function startBalancer(initial: readonly Task[]): Promise<Balancer> {
  const dir = mkdtempSync(join(tmpdir(), "mcp-sidecar-haproxy-"));
  const socket = join(dir, "admin.sock");
  const port = await freePort();
  const servers = Array.from({ length: SLOTS }, (_, i) => {
    const task = initial[i];
    return task === undefined
      ? `  server t${i} 127.0.0.1:9 disabled`
      : `  server t${i} ${task.address}:${task.url.port}`;
  });
  initial.forEach((task, i) => {
    task.slot = i;
  });
  writeFileSync(
    join(dir, "haproxy.cfg"),
    [
      "global",
      `  stats socket ${socket} level admin`,
      "defaults",
      "  mode http",
      "  timeout connect 2s",
      "  timeout client 60s",
      "  timeout server 60s",
      // Every request is balanced on its own (an ALB's behaviour), keep-alive or not.
      "  option http-server-close",
      "frontend mcp",
      `  bind 127.0.0.1:${port}`,
      "  default_backend tasks",
      "backend tasks",
      "  balance roundrobin",
      ...servers,
      "",
    ].join("\n"),
  );
  const haproxy = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  haproxy.stdout.on("data", (d: Buffer) => output.push(d.toString()));
  haproxy.stderr.on("data", (d: Buffer) => output.push(d.toString()));
  const url = new URL(`http://127.0.0.1:${port}`);
  for (let attempt = 0; ; attempt++) {
    const ok = await fetch(new URL("/health", url)).then(
      (r) => r.body?.cancel().then(() => true) ?? true,
      () => false,
    );
    if (ok) break;
    if (attempt > 200 || haproxy.exitCode !== null)
      throw new Error(`haproxy did not start:\n${output.join("")}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const admin = (command: string) =>
    new Promise<string>((resolve, reject) => {
      const conn = connect(socket);
      let answer = "";
      conn.on("data", (d) => {
        answer += d.toString();
      });
      conn.on("end", () => resolve(answer));
      conn.on("error", reject);
      conn.end(`${command}\n`);
    });
  const used = new Set(initial.map((_, i) => i));
  return {
    url,
    async register(task) {
      const slot = [...Array(SLOTS).keys()].find((i) => !used.has(i));
      if (slot === undefined) throw new Error("no free balancer slot");
      used.add(slot);
      task.slot = slot;
      await admin(`set server tasks/t${slot} addr ${task.address} port ${task.url.port}`);
      await admin(`set server tasks/t${slot} state ready`);
    },
    async deregister(task) {
      if (task.slot === undefined) return;
      await admin(`set server tasks/t${task.slot} state maint`);
      used.delete(task.slot);
      task.slot = undefined;
      // ECS stops a task only after its target's deregistration delay (docs/ecs-and-pulumi.md):
      // requests the balancer sent just before land and are served. Without it, one sent a moment
      // before the state change meets the drain's 503, which is what the sidecar must answer then.
      await new Promise((resolve) => setTimeout(resolve, DEREGISTRATION_DELAY_MS));
    },
    async stop() {
      haproxy.kill("SIGKILL");
      await once(haproxy, "exit");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
