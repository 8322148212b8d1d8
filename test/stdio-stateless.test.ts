// 2026-07-28 stateless requests in front of stdio servers: the SDK 2.x client (auto negotiation)
// through the sidecar CLI's --stdio-pool, against server-everything and the test server, real
// processes and signals. Waits on events, never on time.

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterEach, describe, expect, it } from "vitest";
import { openStream, send } from "./helpers/client.ts";
import { stopAllEmulators } from "./helpers/emulator.ts";
import { jsonLine, startSidecarProcess, stopAllProcesses } from "./helpers/processes.ts";
import { EVERYTHING, startWithSecretEnv, TEST_SERVER, textOf } from "./helpers/stdio.ts";

afterEach(async () => {
  await stopAllProcesses();
  await stopAllEmulators();
});

const MODERN = "2026-07-28";

async function modernClient(url: URL): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client(
    { name: "stateless-test", version: "1.0.0" },
    { versionNegotiation: { mode: "auto" } },
  );
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", url));
  await client.connect(transport);
  return { client, transport };
}

async function metric(url: URL, name: string): Promise<number> {
  const text = (await send(new URL("/metrics", url))).text;
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/**
 * Both pool children have answered their initialize (the pool's two, with --stdio-spares 0). The
 * pool starts with the first stateless request (a client's connect probes with one).
 */
const ready = async (url: URL) => {
  await expect.poll(() => metric(url, 'mcp_sidecar_stdio_sessions{state="pool"}')).toBe(2);
  await expect
    .poll(() => metric(url, "mcp_sidecar_stdio_child_start_seconds_count"), { timeout: 10_000 })
    .toBe(2);
};

describe("--stdio-pool: 2026-07-28 stateless requests", () => {
  it("server-everything: the SDK 2.x client negotiates 2026-07-28, no session, tools and progress through the pool", async () => {
    const sidecar = await startSidecarProcess(["--stdio", EVERYTHING, "--stdio-spares", "0"]);
    const { client, transport } = await modernClient(sidecar.url);
    await ready(sidecar.url);
    expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
    expect(transport.sessionId).toBeUndefined();
    // A child's resources/updated needs its own resources/subscribe: a pool does not offer them.
    expect(client.getServerCapabilities()?.resources).toMatchObject({ listChanged: true, subscribe: false });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("get-sum");
    expect(textOf(await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } }))).toBe(
      "The sum of 2 and 3 is 5.",
    );
    const progress: number[] = [];
    const long = await client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 3 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(textOf(long)).toContain("completed");
    // The SDK 2.x client may settle the answer a few microtasks before it hands over the progress
    // that came in the same chunk just ahead of it.
    await expect.poll(() => progress).toEqual([1, 2, 3]);
    // The pool's two children, no session's.
    expect(await metric(sidecar.url, "mcp_sidecar_stdio_children_started_total")).toBe(2);
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions{state="active"}')).toBe(0);
    await client.close();
  });

  it("spreads requests over the pool, each on the least busy child: 20 at once, all answered", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const { client } = await modernClient(sidecar.url);
    await ready(sidecar.url);
    const pids = await Promise.all(
      Array.from({ length: 20 }, () => client.callTool({ name: "slow_pid", arguments: { ms: 200 } })),
    );
    const counts = new Map<string, number>();
    for (const pid of pids.map(textOf)) counts.set(pid, (counts.get(pid) ?? 0) + 1);
    expect([...counts.values()].sort()).toEqual([10, 10]);
    await client.close();
  });

  it("a pool child that crashes mid-call: the call fails at once, the child is replaced, the next call is answered", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const { client } = await modernClient(sidecar.url);
    await ready(sidecar.url);
    await expect(client.callTool({ name: "crash", arguments: { code: 3 } })).rejects.toThrow();
    await sidecar.proc.waitForLine((l) => jsonLine(l)?.cause === "crashed", "the crash logged");
    await expect.poll(() => metric(sidecar.url, "mcp_sidecar_stdio_children_started_total")).toBe(3);
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "after" } }))).toBe("after");
    await client.close();
  });

  it("a client that goes away cancels its call in the child", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const { client } = await modernClient(sidecar.url);
    await ready(sidecar.url);
    const abort = new AbortController();
    const call = client.callTool({ name: "until_cancelled", arguments: {} }, { signal: abort.signal });
    await expect.poll(() => metric(sidecar.url, "mcp_sidecar_http_in_flight")).toBe(1);
    abort.abort();
    await expect(call).rejects.toThrow();
    await sidecar.proc.waitForLine(
      (l) => String(jsonLine(l)?.line ?? "").includes("the call was cancelled"),
      "the child's cancellation",
    );
    await client.close();
  });

  it("subscriptions/listen: a tool list change in a child reaches the open listen stream", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const envelope = {
      "io.modelcontextprotocol/protocolVersion": MODERN,
      "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
      "io.modelcontextprotocol/clientCapabilities": {},
    };
    const listen = await openStream(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": MODERN,
        "mcp-method": "subscriptions/listen",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: "L1",
        method: "subscriptions/listen",
        params: { notifications: { toolsListChanged: true }, _meta: envelope },
      }),
    });
    expect(listen.status).toBe(200);
    await listen.waitFor(
      (t) => t.includes("notifications/subscriptions/acknowledged"),
      "the acknowledgement",
    );
    // The listen request started the pool; now both children can take calls.
    await ready(sidecar.url);
    const { client } = await modernClient(sidecar.url);
    await client.callTool({ name: "add_tool", arguments: { name: "added_later" } });
    await listen.waitFor((t) => t.includes("notifications/tools/list_changed"), "the list change");
    await client.close();
    // The drain ends the listen stream (it never ends by itself), and the sidecar exits.
    sidecar.proc.kill("SIGTERM");
    await listen.ended.catch(() => "");
    expect((await sidecar.proc.exited).code).toBe(0);
  });

  it("SIGTERM with stateless calls in flight: they complete, the pool's children are stopped, exit 0", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const { client } = await modernClient(sidecar.url);
    await ready(sidecar.url);
    const calls = Array.from({ length: 4 }, () =>
      client.callTool({ name: "slow_pid", arguments: { ms: 800 } }),
    );
    await expect.poll(() => metric(sidecar.url, "mcp_sidecar_http_in_flight")).toBe(4);
    sidecar.proc.kill("SIGTERM");
    const pids = (await Promise.all(calls)).map(textOf);
    expect(pids.every((pid) => /^\d+$/.test(pid))).toBe(true);
    expect((await sidecar.proc.exited).code).toBe(0);
    expect(sidecar.proc.lines.map(jsonLine).filter((l) => l?.msg === "stdio server exited")).toHaveLength(2);
  });

  it("after a --secret-env rotation, the pool's children are replaced with the new value: no call fails", async () => {
    const { agent, sidecar } = await startWithSecretEnv("s3cr3t-first", ["--stdio-spares", "0"]);
    // Children started before the secret was first read are replaced before they serve.
    const { client } = await modernClient(sidecar.url);
    const keyNow = async () =>
      (JSON.parse(textOf(await client.callTool({ name: "env", arguments: {} }))) as { UPSTREAM_KEY?: string })
        .UPSTREAM_KEY;
    expect(await keyNow()).toBe("s3cr3t-first");
    agent.rotate("mcp/upstream", "s3cr3t-second");
    await expect.poll(keyNow, { timeout: 10_000 }).toBe("s3cr3t-second");
    await client.close();
  });

  it("--stdio-pool 0: a 2026-07-28 client's probe gets 400 and it falls back to a session", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-pool", "0"]);
    const { client, transport } = await modernClient(sidecar.url);
    expect(client.getNegotiatedProtocolVersion()).toBe("2025-11-25");
    expect(transport.sessionId).toMatch(/\S/);
    expect(textOf(await client.callTool({ name: "echo", arguments: { message: "s" } }))).toBe("s");
    await transport.terminateSession();
    await client.close();
  });
});
