// `npm start` (scripts/local-stack.ts) as a new user meets it: real processes, real signals, real
// HTTP on ephemeral ports. The stack runs in its own process group, as a terminal's foreground job
// does, so a Ctrl-C is a SIGINT to that whole group. The timing rules are tested with fake timers.

import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { type AddressInfo, createServer, type Server } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Stoppable, stopGracefully } from "../scripts/local-stack/children.ts";
import { stopSignalHandler } from "../scripts/local-stack/signals.ts";
import { freePort } from "./helpers/net.ts";
import { jsonLine, type Started, startProcess, stopAllProcesses } from "./helpers/processes.ts";

const stacks: Started[] = [];
const held: Server[] = [];

afterEach(async () => {
  // A failed test may leave the stack's children behind (they are in their own groups): kill them.
  for (const stack of stacks)
    for (const pid of childPids(stack)) if (alive(pid)) process.kill(-pid, "SIGKILL");
  stacks.length = 0;
  await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
  held.length = 0;
  await stopAllProcesses();
  vi.useRealTimers();
});

/** The children's pids, from the line the stack prints when it starts each. */
function childPids(stack: Started): number[] {
  return stack.lines.flatMap((line) => {
    const match = /^local-stack: started the [\w-]+: pid (\d+)$/.exec(line);
    return match ? [Number(match[1])] : [];
  });
}

/** Whether a process exists and is not a zombie (exited, not yet reaped). */
function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false; // gone between the two reads
  }
}

async function startStack(ports: Partial<Record<"port" | "server-port" | "agent-port", number>> = {}) {
  const args: string[] = [];
  for (const flag of ["port", "server-port", "agent-port"] as const)
    args.push(`--${flag}`, String(ports[flag] ?? (await freePort())));
  const stack = startProcess(process.execPath, ["scripts/local-stack.ts", ...args], { detached: true });
  stacks.push(stack);
  return { stack, port: Number(args[1]) };
}

async function readyStack() {
  const { stack, port } = await startStack();
  const keyLine = await stack.waitForLine((l) => l.includes("API key for this run:"), "the banner");
  const apiKey = keyLine.trim().split(/\s+/).at(-1) as string;
  const pids = childPids(stack);
  expect(pids).toHaveLength(3);
  return { stack, pids, mcp: `http://127.0.0.1:${port}/mcp`, apiKey };
}

/** Initializes a session and starts a `slow` call; resolves once the server runs it. */
async function slowCallInFlight(stack: Started, mcp: string, apiKey: string, ms: number) {
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${apiKey}`,
  };
  const init = await fetch(mcp, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  expect(init.status).toBe(200);
  await init.text();
  const call = fetch(mcp, {
    method: "POST",
    headers: {
      ...headers,
      "mcp-session-id": init.headers.get("mcp-session-id") ?? "",
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "slow", arguments: { ms } },
    }),
  }).then((response) => response.text());
  // Settled either way, so a call cut before the test awaits it is not an unhandled rejection.
  call.catch(() => {});
  await stack.waitForLine(
    (l) => l.startsWith("[server] ") && jsonLine(l.slice(9))?.tool === "slow",
    "the server running the call",
  );
  return { call };
}

const logOf = (stack: Started, child: string, msg: string) =>
  stack.lines.findIndex(
    (l) => l.startsWith(`[${child}] `) && jsonLine(l.slice(child.length + 3))?.msg === msg,
  );

describe("npm start: flags", () => {
  it.each([
    [["--server-port", "http"], '--server-port "http" is not a port'],
    [["--bogus"], "Unknown option '--bogus'"],
    [["--replicas", "9"], '--replicas "9" is not 1-5'],
  ])("%j: exits 2 naming the flag, before starting anything", async (args, message) => {
    const proc = startProcess(process.execPath, ["scripts/local-stack.ts", ...args]);
    expect((await proc.exited).code).toBe(2);
    expect(proc.lines.join("\n")).toContain(message);
    expect(childPids(proc)).toEqual([]);
  });
});

describe("npm start -- --replicas 3", () => {
  it("runs three tasks behind HAProxy with sessions routed: the check passes through the balancer, every sidecar drains, exit 0, no process left", async () => {
    const args = ["--replicas", "3", "--check"];
    for (const flag of ["port", "server-port", "agent-port"] as const)
      args.push(`--${flag}`, String(await freePort()));
    const stack = startProcess(process.execPath, ["scripts/local-stack.ts", ...args], { detached: true });
    stacks.push(stack);
    expect((await stack.exited).code).toBe(0);
    const output = stack.lines.join("\n");
    expect(output).toContain("round-robin over 3 tasks, sessions routed");
    expect(output).toMatch(/initialize with key -> 200/);
    expect(output).toContain("the sidecars exited (codes 0, 0, 0)");
    const started = childPids(stack);
    expect(started).toHaveLength(8); // agent, 3 servers, 3 sidecars, the balancer
    expect(output).toContain("started the server-3");
    for (const pid of started) expect(alive(pid), `pid ${pid}`).toBe(false);
  }, 60_000);
});

describe("npm start: stopping", () => {
  it("Ctrl-C (SIGINT to the whole group, and again from npm) lets a call in flight finish, stops the sidecar before the rest, exits 0, leaves no process", async () => {
    const { stack, pids, mcp, apiKey } = await readyStack();
    const { call } = await slowCallInFlight(stack, mcp, apiKey, 1500);
    process.kill(-(stack.child.pid as number), "SIGINT");
    // npm forwards the SIGINT it got to its child: the same Ctrl-C reaches the stack again, once
    // the stack has handled the first (sent at once, the kernel would merge the two).
    await stack.waitForLine((l) => l.startsWith("local-stack: stopping"), "the stack stopping");
    process.kill(stack.child.pid as number, "SIGINT");
    const body = await call;
    expect(body).toContain('"result"');
    expect(body).toContain("waited 1500 ms");
    const { code } = await stack.exited;
    expect(code, stack.lines.join("\n")).toBe(0);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
    const stopped = jsonLine(stack.lines[logOf(stack, "sidecar", "sidecar stopped")]?.slice(10) ?? "");
    expect(stopped).toMatchObject({ reason: "drained", cut: 0, exitCode: 0 });
    expect(logOf(stack, "sidecar", "second signal: stopping now")).toBe(-1);
    // ECS's order: the server starts stopping only after the sidecar has drained.
    expect(logOf(stack, "server", "draining")).toBeGreaterThan(logOf(stack, "sidecar", "sidecar stopped"));
  });

  it("SIGTERM to the stack's process alone stops every child and exits 0", async () => {
    const { stack, pids } = await readyStack();
    stack.kill("SIGTERM");
    expect((await stack.exited).code, stack.lines.join("\n")).toBe(0);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
  });

  it("a second Ctrl-C after the first second kills every process at once and exits 1", async () => {
    const { stack, pids, mcp, apiKey } = await readyStack();
    const { call } = await slowCallInFlight(stack, mcp, apiKey, 60_000);
    process.kill(-(stack.child.pid as number), "SIGINT");
    await stack.waitForLine((l) => l.includes("Ctrl-C again kills every process now"));
    process.kill(-(stack.child.pid as number), "SIGINT");
    const forced = performance.now();
    expect((await stack.exited).code).toBe(1);
    // Killed, not drained: otherwise the sidecar's drain timeout (25 s) would have ended the call.
    expect(performance.now() - forced).toBeLessThan(5000);
    expect(logOf(stack, "sidecar", "sidecar stopped")).toBe(-1);
    await expect(call).rejects.toThrow();
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
  });
});

describe("npm start: a port already taken", () => {
  it.each([
    ["port", "sidecar"],
    ["server-port", "server"],
    ["agent-port", "agent"],
  ] as const)(
    "--%s taken: the %s's failure stops the stack at once, naming port and flag, with no banner and no process left",
    async (flag, child) => {
      const holder = createServer();
      held.push(holder);
      holder.listen(0, "127.0.0.1");
      await once(holder, "listening");
      const port = (holder.address() as AddressInfo).port;
      const { stack } = await startStack({ [flag]: port });
      await stack.waitForLine(
        (l) => l.startsWith(`[${child}]`) && l.includes('"cannot listen"'),
        "cannot listen",
      );
      const failed = performance.now();
      const { code } = await stack.exited;
      // The stack used to go on for 10 s (its readiness loop) and print the banner; stopping what
      // did start takes tens of milliseconds.
      expect(performance.now() - failed).toBeLessThan(1000);
      expect(code).toBe(1);
      const text = stack.lines.join("\n");
      expect(text).toContain(`port ${port} is taken: the ${child} cannot listen on 127.0.0.1:${port}`);
      expect(text).toContain(`--${flag}`);
      expect(text).not.toContain("MCP endpoint");
      for (const pid of childPids(stack)) expect(alive(pid), `pid ${pid}`).toBe(false);
    },
  );
});

describe("stopSignalHandler (fake timers)", () => {
  function handler() {
    vi.useFakeTimers();
    const calls: string[] = [];
    const onSignal = stopSignalHandler(
      {
        stop: () => calls.push("stop"),
        armed: () => calls.push("armed"),
        force: () => calls.push("force"),
      },
      1000,
    );
    return { calls, onSignal };
  }

  it.each([0, 1, 999])("takes a signal %i ms after the first as the same Ctrl-C: nothing more", (ms) => {
    const { calls, onSignal } = handler();
    onSignal();
    vi.advanceTimersByTime(ms);
    onSignal();
    expect(calls).toEqual(["stop"]);
  });

  it("arms at the end of the window, then forces once", () => {
    const { calls, onSignal } = handler();
    onSignal();
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(["stop", "armed"]);
    onSignal();
    onSignal();
    expect(calls).toEqual(["stop", "armed", "force"]);
  });
});

describe("stopGracefully (fake timers)", () => {
  function fakeChild() {
    const signals: string[] = [];
    let exit!: (code: number | null) => void;
    const child: Stoppable & { running: boolean } = {
      running: true,
      exited: new Promise((resolve) => {
        exit = (code) => {
          child.running = false;
          resolve(code);
        };
      }),
      signal: (signal) => signals.push(signal),
    };
    return { child, signals, exit: (code: number | null) => exit(code) };
  }

  it("sends SIGTERM, and SIGKILL only when the child is still there after the grace period", async () => {
    vi.useFakeTimers();
    const slow = fakeChild();
    const stopped = stopGracefully(slow.child, 30_000);
    vi.advanceTimersByTime(29_999);
    expect(slow.signals).toEqual(["SIGTERM"]);
    vi.advanceTimersByTime(1);
    expect(slow.signals).toEqual(["SIGTERM", "SIGKILL"]);
    slow.exit(null);
    expect(await stopped).toBeNull();

    const quick = fakeChild();
    const done = stopGracefully(quick.child, 30_000);
    quick.exit(0);
    expect(await done).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(quick.signals).toEqual(["SIGTERM"]);
  });

  it("signals nothing that has already exited", async () => {
    const gone = fakeChild();
    gone.exit(3);
    expect(await stopGracefully(gone.child, 30_000)).toBe(3);
    expect(gone.signals).toEqual([]);
  });
});
