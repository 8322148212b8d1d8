// The stdio upstream with real processes: the sidecar CLI running real stdio MCP servers (the SDK's
// server-everything, server-memory, and a test server that misbehaves on command), real SDK
// clients, real signals. Waits on events (a log line, an exit, an answer), never on time.

import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { childPids } from "../bench/lib.ts";
import { CHILD_OOM_SCORE_ADJ } from "../proxy/upstream/stdio/process.ts";
import { initializeBody, send } from "./helpers/client.ts";
import { stopAllEmulators } from "./helpers/emulator.ts";
import { jsonLine, type Started, startSidecarProcess, stopAllProcesses } from "./helpers/processes.ts";
import {
  EVERYTHING,
  MEMORY,
  PYTHON_SERVER,
  startWithSecretEnv,
  TEST_SERVER,
  textOf,
} from "./helpers/stdio.ts";

afterEach(async () => {
  await stopAllProcesses();
  await stopAllEmulators();
});

const ACCEPT = "application/json, text/event-stream";

async function connect(url: URL): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "stdio-test", version: "1.0.0" });
  client.onerror = () => {};
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", url));
  await client.connect(transport);
  return { client, transport };
}

const logs = (proc: Started, msg: string) =>
  proc.lines.map(jsonLine).filter((line): line is Record<string, unknown> => line?.msg === msg);

const commandOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
};

/** Running: a zombie (exited, waiting for a parent that may never reap it) is not. */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
};

async function metric(url: URL, name: string): Promise<number> {
  const text = (await send(new URL("/metrics", url))).text;
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? Number.NaN : Number(line.split(" ").at(-1));
}

describe("--stdio with real stdio servers", () => {
  it("server-everything: initialize, tools, progress on the call's stream, DELETE stops its child", async () => {
    const sidecar = await startSidecarProcess(["--stdio", EVERYTHING]);
    const { client, transport } = await connect(sidecar.url);
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toContain("echo");
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "via stdio" } }))).toBe(
      "Echo: via stdio",
    );
    const progress: number[] = [];
    const long = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(textOf(long)).toContain("completed");
    expect(progress).toEqual([1, 2, 3]);
    const sessionId = transport.sessionId as string;
    await transport.terminateSession();
    await sidecar.proc.waitForLine((line) => jsonLine(line)?.msg === "stdio server exited");
    expect(logs(sidecar.proc, "stdio server exited")[0]).toMatchObject({ cause: "stopped" });
    const after = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT, "mcp-session-id": sessionId },
      body: '{"jsonrpc":"2.0","id":9,"method":"tools/list"}',
    });
    expect(after.status).toBe(404);
    expect(after.json()).toMatchObject({
      id: 9,
      error: { code: -32001, data: { code: "MCP_SIDECAR_SESSION_NOT_FOUND" } },
    });
    await client.close();
  });

  it("server-memory: its knowledge graph belongs to its session's child", async () => {
    const sidecar = await startSidecarProcess(["--stdio", MEMORY], {
      MEMORY_FILE_PATH: "/tmp/mcp-sidecar-memory-test.json",
    });
    const a = await connect(sidecar.url);
    const tools = (await a.client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toContain("create_entities");
    await a.client.callTool({
      name: "create_entities",
      arguments: { entities: [{ name: "sidecar", entityType: "project", observations: ["stdio"] }] },
    });
    expect(textOf(await a.client.callTool({ name: "read_graph", arguments: {} }))).toContain("sidecar");
    await a.client.close();
  });

  it("a Python server that print()s its answers to the pipe, unflushed: served, not stuck in Python's buffer", async () => {
    const sidecar = await startSidecarProcess(["--stdio", PYTHON_SERVER]);
    const { client } = await connect(sidecar.url);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(["echo"]);
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "hi" } }))).toBe(
      "python says hi",
    );
    await client.close();
  });

  it("50 sessions at once: a child each (no cross-talk), all answered, all stopped on DELETE", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER]);
    const sessions = await Promise.all(Array.from({ length: 50 }, () => connect(sidecar.url)));
    const pids = await Promise.all(
      sessions.map(({ client }) => client.callTool({ name: "pid", arguments: {} })),
    );
    expect(new Set(pids.map(textOf)).size).toBe(50);
    // Out of memory, the kernel ends a child (one session) before the sidecar (all of them).
    const oomScoreAdj = (pid: string) => readFileSync(`/proc/${pid}/oom_score_adj`, "utf8").trim();
    expect(new Set(pids.map((r) => oomScoreAdj(textOf(r))))).toEqual(new Set([String(CHILD_OOM_SCORE_ADJ)]));
    expect(oomScoreAdj(String(sidecar.proc.child.pid))).toBe(oomScoreAdj("self"));
    const echoes = await Promise.all(
      sessions.map(({ client }, i) => client.callTool({ name: "echo", arguments: { message: `s${i}` } })),
    );
    expect(echoes.map(textOf)).toEqual(sessions.map((_, i) => `s${i}`));
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions{state="active"}')).toBe(50);
    // One more process than sessions: the spare (--stdio-spares 1), refilled after each session took one.
    expect(await metric(sidecar.url, "mcp_sidecar_stdio_children")).toBe(51);
    await Promise.all(sessions.map(({ transport }) => transport.terminateSession()));
    await expect.poll(() => logs(sidecar.proc, "stdio server exited").length).toBe(50);
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions{state="active"}')).toBe(0);
    expect(await metric(sidecar.url, "mcp_sidecar_stdio_children")).toBe(1);
    await expect.poll(() => pids.map((r) => Number(textOf(r))).filter(alive)).toEqual([]);
    await Promise.all(sessions.map(({ client }) => client.close()));
  });
});

describe("--stdio when children misbehave", () => {
  it("a child that crashes mid-call: the call gets a JSON-RPC error at once, the session then 404s, the crash is logged and counted", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER]);
    const { client, transport } = await connect(sidecar.url);
    const started = performance.now();
    const failure = await client.callTool({ name: "crash", arguments: { code: 7 } }).then(
      () => undefined,
      (error: Error) => error,
    );
    // Far below the client's 60 s timeout: the sidecar answered for the dead child.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(failure?.message).toContain("exited with code 7");
    const exit = await sidecar.proc.waitForLine((line) => jsonLine(line)?.msg === "stdio server exited");
    expect(jsonLine(exit)).toMatchObject({
      cause: "crashed",
      code: 7,
      detail: expect.stringContaining("crashing, as asked"),
    });
    const next = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: ACCEPT,
        "mcp-session-id": transport.sessionId as string,
      },
      body: '{"jsonrpc":"2.0","id":3,"method":"tools/list"}',
    });
    expect(next.status).toBe(404);
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_children_exited_total{cause="crashed"}')).toBe(1);
    await client.close();
  });

  it("a child that fails at start: initialize gets an error naming the command and its exit status; starts back off; /ready says why", async () => {
    const sidecar = await startSidecarProcess(["--stdio", `${TEST_SERVER} --fail-at-start`]);
    const first = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT },
      body: initializeBody("failing"),
    });
    expect(first.text).toContain("MCP_SIDECAR_STDIO_START_FAILED");
    expect(first.text).toContain("stdio-test-server.ts --fail-at-start exited with code 3");
    // Its stderr is in the log (below), never in what a client or /ready is told.
    expect(first.text).not.toContain("failing at start, as asked");
    const ready = await send(new URL("/ready", sidecar.url));
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({
      reasons: [expect.stringContaining("stdio: children cannot be started")],
    });
    expect(ready.text).not.toContain("failing at start, as asked");
    const again = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT },
      body: initializeBody("failing"),
    });
    expect(again.status).toBe(502);
    expect(again.headers["retry-after"]).toBeDefined();
    expect(again.json()).toMatchObject({
      id: 1,
      error: { data: { code: "MCP_SIDECAR_STDIO_START_FAILED" } },
    });
    const exited = await sidecar.proc.waitForLine((l) => jsonLine(l)?.msg === "stdio server exited");
    expect(jsonLine(exited)?.detail).toContain("failing at start, as asked");
  });

  it("a command that does not exist: a clear error naming it", async () => {
    const sidecar = await startSidecarProcess(["--stdio", "/nonexistent/mcp-server --flag"]);
    const response = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT },
      body: initializeBody("missing"),
    });
    expect(response.text).toContain("could not be started: /nonexistent/mcp-server --flag: ENOENT");
  });

  it("reaps a session idle past --session-idle-timeout, its GET stream open or not", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--session-idle-timeout", "300ms"]);
    const { client, transport } = await connect(sidecar.url);
    // The SDK client opens the GET stream by itself after initialize; it does not keep the session.
    const exit = await sidecar.proc.waitForLine((line) => jsonLine(line)?.msg === "stdio server exited");
    expect(jsonLine(exit)).toMatchObject({ cause: "stopped" });
    const next = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: ACCEPT,
        "mcp-session-id": transport.sessionId as string,
      },
      body: '{"jsonrpc":"2.0","id":3,"method":"tools/list"}',
    });
    expect(next.status).toBe(404);
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="idle"}')).toBe(1);
    await client.close();
  });

  it("an initialize the SDK refuses (no Accept for SSE) gives its child and its place back at once", async () => {
    const sidecar = await startSidecarProcess([
      "--stdio",
      TEST_SERVER,
      "--max-sessions",
      "1",
      "--stdio-spares",
      "0",
    ]);
    for (let i = 0; i < 3; i++) {
      const refused = await send(new URL("/mcp", sidecar.url), {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: initializeBody("no-sse"),
      });
      expect(refused.status).toBe(406);
    }
    await expect
      .poll(() => metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="refused"}'))
      .toBe(3);
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions{state="starting"}')).toBe(0);
    // Its one place is free: a proper initialize gets a session.
    const { client } = await connect(sidecar.url);
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "in" } }))).toBe("in");
    await client.close();
  });

  it("answers an initialize over --max-sessions with 503 and a JSON-RPC error, never a crash", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--max-sessions", "2"]);
    const open = await Promise.all([connect(sidecar.url), connect(sidecar.url)]);
    const third = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT },
      body: initializeBody("third"),
    });
    expect(third.status).toBe(503);
    expect(third.json()).toMatchObject({ id: 1, error: { data: { code: "MCP_SIDECAR_TOO_MANY_SESSIONS" } } });
    expect(third.headers["retry-after"]).toBeDefined();
    await Promise.all(open.map(({ client }) => client.close()));
  });
});

describe("--stdio warm spares", () => {
  it("keeps --stdio-spares children started; each session takes one, never shared, and the pool refills", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "2"]);
    const spares = () => metric(sidecar.url, 'mcp_sidecar_stdio_sessions{state="spare"}');
    await expect.poll(spares).toBe(2);
    const sessions = await Promise.all(Array.from({ length: 3 }, () => connect(sidecar.url)));
    const pids = (
      await Promise.all(sessions.map(({ client }) => client.callTool({ name: "pid", arguments: {} })))
    ).map(textOf);
    expect(new Set(pids).size).toBe(3);
    await expect.poll(spares).toBe(2);
    expect(await metric(sidecar.url, "mcp_sidecar_stdio_children")).toBe(5);
    // A spare was started ahead: its session's first answer came from a process already booted.
    expect(await metric(sidecar.url, "mcp_sidecar_stdio_children_started_total")).toBe(5);
    sidecar.proc.kill("SIGTERM");
    expect((await sidecar.proc.exited).code).toBe(0);
    expect(logs(sidecar.proc, "stdio server exited")).toHaveLength(5);
    await Promise.all(sessions.map(({ client }) => client.close()));
  });
});

describe("--stdio environment and stop", () => {
  it("gives the child PATH, HOME, LANG, TZ, PYTHONUNBUFFERED and --stdio-env only: never the agent token or MCP_SIDECAR_*", async () => {
    const sidecar = await startSidecarProcess(
      ["--stdio", TEST_SERVER, "--stdio-env", "EXTRA_CA", "--stdio-env", "MODE=test"],
      {
        AWS_TOKEN: "s3cr3t-agent-token",
        MCP_SIDECAR_LOG_LEVEL: "info",
        EXTRA_CA: "/etc/ca.pem",
        SHELL: "/bin/sh",
        TZ: "UTC",
      },
    );
    const { client } = await connect(sidecar.url);
    const env = JSON.parse(textOf(await client.callTool({ name: "env", arguments: {} }))) as Record<
      string,
      string
    >;
    expect(Object.keys(env).sort()).toEqual(
      [
        "EXTRA_CA",
        "MODE",
        "PATH",
        "PYTHONUNBUFFERED",
        "TZ",
        ...(process.env.HOME ? ["HOME"] : []),
        ...(process.env.LANG ? ["LANG"] : []),
      ].sort(),
    );
    expect(env).toMatchObject({ EXTRA_CA: "/etc/ca.pem", MODE: "test", TZ: "UTC" });
    await client.close();
  });

  it("SIGTERM with calls in flight: they complete, then every child and grandchild is stopped, exit 0", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER]);
    const sessions = await Promise.all(Array.from({ length: 5 }, () => connect(sidecar.url)));
    const grandchildren = await Promise.all(
      sessions.map(({ client }) => client.callTool({ name: "spawn_grandchild", arguments: {} })),
    );
    const pids = await Promise.all(
      sessions.map(({ client }) => client.callTool({ name: "pid", arguments: {} })),
    );
    const calls = sessions.map(({ client }) => client.callTool({ name: "slow", arguments: { ms: 800 } }));
    await expect.poll(() => logs(sidecar.proc, "request").length).toBeGreaterThanOrEqual(5 * 4);
    sidecar.proc.kill("SIGTERM");
    const results = await Promise.all(calls);
    expect(results.map(textOf)).toEqual(sessions.map(() => "slept 800 ms"));
    const { code } = await sidecar.proc.exited;
    expect(code).toBe(0);
    // A killed process stays visible until its new parent reaps it: wait for that, not a while.
    const left = () => [...pids, ...grandchildren].map((r) => Number(textOf(r))).filter(alive);
    await expect.poll(left, { timeout: 5000 }).toEqual([]);
    // The five sessions' children and the spare.
    expect(logs(sidecar.proc, "stdio server exited")).toHaveLength(6);
  });

  it("SIGKILL of the sidecar: the reaper ends every child's group, a stubborn child and grandchildren too", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-stop-grace", "200ms"]);
    const sessions = await Promise.all([connect(sidecar.url), connect(sidecar.url)]);
    const [stubborn, polite] = sessions.map(({ client }) => client);
    const pids = [
      ...(await Promise.all(sessions.map(({ client }) => client.callTool({ name: "pid", arguments: {} })))),
      ...(await Promise.all(
        sessions.map(({ client }) => client.callTool({ name: "spawn_grandchild", arguments: {} })),
      )),
    ].map((result) => Number(textOf(result)));
    await stubborn?.callTool({ name: "stubborn", arguments: {} });
    const reaper = childPids(sidecar.proc.child.pid as number).find((pid) =>
      commandOf(pid).includes("mcp-sidecar-reaper"),
    );
    expect(reaper).toBeDefined();
    sidecar.proc.kill("SIGKILL");
    await sidecar.proc.exited;
    // A killed process stays visible until its new parent reaps it: wait for that, not a while.
    await expect.poll(() => [...pids, reaper as number].filter(alive), { timeout: 5000 }).toEqual([]);
    await Promise.all([stubborn?.close(), polite?.close()].map((p) => p?.catch(() => {})));
  });

  it("a child that exits by itself takes what it started with it", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER]);
    const { client } = await connect(sidecar.url);
    const grandchild = Number(textOf(await client.callTool({ name: "spawn_grandchild", arguments: {} })));
    await expect(client.callTool({ name: "crash", arguments: {} })).rejects.toThrow();
    await expect.poll(() => alive(grandchild), { timeout: 5000 }).toBe(false);
    await client.close().catch(() => {});
  });
});

describe("--secret-env and rotation", () => {
  it("gives children the secret's value; after a rotation new children get the new one, old ones roll between calls: no call fails", async () => {
    const { agent, sidecar } = await startWithSecretEnv("s3cr3t-first");
    await expect.poll(() => send(new URL("/ready", sidecar.url)).then((r) => r.status)).toBe(200);
    const keyOf = async (client: Client) =>
      (JSON.parse(textOf(await client.callTool({ name: "env", arguments: {} }))) as Record<string, string>)
        .UPSTREAM_KEY;

    // Clients that do what the spec asks on a 404 for their session: initialize again, and retry.
    let failures = 0;
    let reinitialized = 0;
    const seen = new Set<string>();
    let stop = false;
    const worker = async () => {
      let { client } = await connect(sidecar.url);
      for (let i = 0; !stop && i < 2000; i++) {
        try {
          seen.add((await keyOf(client)) ?? "(none)");
          await client.callTool({ name: "slow", arguments: { ms: 20 } });
        } catch (error) {
          if (!/404|Session not found/.test(String((error as Error).message))) {
            failures++;
            continue;
          }
          reinitialized++;
          await client.close().catch(() => {});
          // A new session must connect at once, a rotation under way or not.
          ({ client } = await connect(sidecar.url).catch(() => {
            failures++;
            return { client };
          }));
        }
      }
      await client.close();
    };
    const workers = Array.from({ length: 5 }, worker);
    await expect.poll(() => seen.has("s3cr3t-first")).toBe(true);
    agent.rotate("mcp/upstream", "s3cr3t-second");
    await expect.poll(() => seen.has("s3cr3t-second")).toBe(true);
    stop = true;
    await Promise.all(workers);
    expect(failures).toBe(0);
    expect(reinitialized).toBeGreaterThan(0);
    expect(
      await metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="rolled"}'),
    ).toBeGreaterThan(0);
    // A session started now gets the new value.
    const fresh = await connect(sidecar.url);
    expect(await keyOf(fresh.client)).toBe("s3cr3t-second");
    await fresh.client.close();
  });

  it("rolls a session only once its client is past the handshake, so the client's connect never meets the 404", async () => {
    const { agent, sidecar } = await startWithSecretEnv("s3cr3t-first");
    await expect.poll(() => send(new URL("/ready", sidecar.url)).then((r) => r.status)).toBe(200);
    const witness = await connect(sidecar.url);
    // A client between its initialize answer and its notifications/initialized.
    const mcp = new URL("/mcp", sidecar.url);
    const init = await send(mcp, {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT },
      body: initializeBody("between"),
    });
    const session = String(init.headers["mcp-session-id"]);
    agent.rotate("mcp/upstream", "s3cr3t-second");
    // The witness, settled and idle, is rolled at the first tick after the rotation is seen; every
    // session is looked at in that same tick.
    await expect
      .poll(() => metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="rolled"}'), {
        timeout: 10_000,
      })
      .toBe(1);
    await expect(witness.client.listTools()).rejects.toThrow(/404|Session not found/);
    const initialized = await send(mcp, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: ACCEPT,
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
      },
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    });
    expect(initialized.status).toBe(202);
    // Past its handshake now, with no call in flight: it is rolled in turn.
    await expect
      .poll(() => metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="rolled"}'), {
        timeout: 10_000,
      })
      .toBe(2);
    await witness.client.close();
  });

  it("--roll-on-rotation=false keeps the children until their sessions end", async () => {
    const { agent, sidecar } = await startWithSecretEnv("s3cr3t-a", ["--roll-on-rotation=false"]);
    await expect.poll(() => send(new URL("/ready", sidecar.url)).then((r) => r.status)).toBe(200);
    const old = await connect(sidecar.url);
    agent.rotate("mcp/upstream", "s3cr3t-b");
    // Once a new session sees the new value, the sidecar has seen the rotation.
    await expect
      .poll(async () => {
        const probe = await connect(sidecar.url);
        const env = JSON.parse(textOf(await probe.client.callTool({ name: "env", arguments: {} }))) as Record<
          string,
          string
        >;
        await probe.transport.terminateSession();
        await probe.client.close();
        return env.UPSTREAM_KEY;
      })
      .toBe("s3cr3t-b");
    const env = JSON.parse(textOf(await old.client.callTool({ name: "env", arguments: {} }))) as Record<
      string,
      string
    >;
    expect(env.UPSTREAM_KEY).toBe("s3cr3t-a");
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="rolled"}')).toBeNaN();
    await old.client.close();
  });
});
