// The drain under load, with real processes and real signals: the sidecar is a child process, the
// MCP clients are real SDK clients, SIGTERM is a real SIGTERM.

import type { Server } from "node:http";
import {
  Client as Sdk2Client,
  StreamableHTTPClientTransport as Sdk2Transport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { initializeBody, openStream, send } from "./helpers/client.ts";
import { closeHttp, freePort } from "./helpers/net.ts";
import {
  jsonLine,
  ROOT,
  type Started,
  startProcess,
  startReferenceServer,
  startSidecarProcess,
  stopAllProcesses,
} from "./helpers/processes.ts";
import { startSdk2Server, toolEvents } from "./peers/sdk2-server.ts";

afterEach(async () => {
  await stopAllProcesses();
});

const ACCEPT_BOTH = "application/json, text/event-stream";

/** Requests on a brand-new connection each, as late clients arriving after the signal would. */
async function fresh(url: URL, options: Omit<Parameters<typeof send>[1] & {}, "dispatcher"> = {}) {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    return await send(url, { ...options, dispatcher });
  } catch (error) {
    // Name the request: a reset in a test with hundreds of them is otherwise anonymous.
    throw new Error(`${options.method ?? "GET"} ${url.pathname}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await dispatcher.close();
  }
}

type Failure = "reset" | "refused" | "other";
function classify(error: unknown): Failure {
  const text = `${(error as Error)?.message} ${String((error as { cause?: unknown })?.cause)} ${(error as { code?: string })?.code}`;
  if (/ECONNRESET|other side closed|socket hang up|UND_ERR_SOCKET|terminated/i.test(text)) return "reset";
  if (/ECONNREFUSED/.test(text)) return "refused";
  return "other";
}

function logLine(proc: Started, msg: string): Record<string, unknown> | undefined {
  return proc.lines.map(jsonLine).find((line) => line?.msg === msg);
}

/** Sends the late requests a draining sidecar must answer 503 + Connection: close, never reset. */
async function lateRequests(sidecarUrl: URL, count: number) {
  const outcomes = {
    status503: 0,
    withJsonRpcId: 0,
    withRetryAfter: 0,
    withConnectionClose: 0,
    resets: 0,
    refused: 0,
    other: 0,
  };
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      try {
        const response = await fresh(new URL("/mcp", sidecarUrl), {
          method: "POST",
          headers: { "content-type": "application/json", accept: ACCEPT_BOTH },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id: 1000 + i,
            method: "tools/call",
            params: { name: "echo", arguments: { message: "late" } },
          }),
        });
        if (response.status === 503) outcomes.status503++;
        if ((JSON.parse(response.text) as { id?: number }).id === 1000 + i) outcomes.withJsonRpcId++;
        if (response.headers["retry-after"] === "2") outcomes.withRetryAfter++;
        if (response.headers.connection === "close") outcomes.withConnectionClose++;
      } catch (error) {
        const kind = classify(error);
        outcomes[kind === "reset" ? "resets" : kind]++;
      }
    }),
  );
  return outcomes;
}

describe("drain on SIGTERM (real processes)", () => {
  it("200 SDK 1.x clients: every in-flight call completes, GET streams end cleanly, late work gets 503, exit 0 right after the longest call", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecarProcess(["--upstream", server.origin]);
    const mcpUrl = new URL("/mcp", sidecar.url);
    const CLIENTS = 200;

    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const client = new Client({ name: "drain-test", version: "1.0.0" });
        const transport = new StreamableHTTPClientTransport(mcpUrl);
        client.onerror = () => {}; // the GET stream's reconnect after `retry:` meets the drain: expected
        await client.connect(transport);
        return { client, transport };
      }),
    );

    // Raw standalone GET streams on sessions of their own, to see exactly how they end.
    const getStreams = await Promise.all(
      clients.slice(0, 10).map(async ({ transport }, i) => {
        // A second GET in a session is 409; these sessions are new.
        const init = await fresh(mcpUrl, {
          method: "POST",
          headers: { "content-type": "application/json", accept: ACCEPT_BOTH },
          body: initializeBody(`raw-${i}`),
        });
        const session = String(init.headers["mcp-session-id"]);
        expect(transport.sessionId).not.toBe(session);
        const headers = {
          accept: "text/event-stream",
          "mcp-session-id": session,
          "mcp-protocol-version": "2025-11-25",
        };
        await fresh(mcpUrl, {
          method: "POST",
          headers: { ...headers, accept: ACCEPT_BOTH, "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
        });
        return openStream(mcpUrl, { headers });
      }),
    );
    for (const stream of getStreams) expect(stream.status).toBe(200);

    const started = performance.now();
    let lastCallEnd = 0;
    // 0.2-3 s, and one of 8 s: the drain outlasts the checks made during it (on a loaded machine the
    // 50 late requests took over 2 s, and the drain ended under them).
    const durations = Array.from({ length: CLIENTS }, (_, i) =>
      i === CLIENTS - 1 ? 8000 : 200 + ((i * 37) % 2801),
    );
    const calls = clients.map(({ client }, i) => {
      const withProgress = i % 2 === 0;
      const progress: number[] = [];
      return client
        .callTool({ name: "slow", arguments: { ms: durations[i], steps: 4 } }, undefined, {
          ...(withProgress ? { onprogress: (p: { progress: number }) => progress.push(p.progress) } : {}),
          timeout: 60_000,
        })
        .then(
          (result) => {
            lastCallEnd = Math.max(lastCallEnd, performance.now());
            const text = (result.content as { text: string }[])[0]?.text;
            return {
              ok: text === `waited ${durations[i]} ms` && (!withProgress || progress.length === 4),
              failure: undefined,
            };
          },
          (error: unknown) => ({ ok: false, failure: classify(error) }),
        );
    });

    // Signal only once every call is running in the server.
    await server.proc.waitForLine(
      () => server.proc.lines.filter((l) => jsonLine(l)?.tool === "slow").length >= CLIENTS,
      "200 slow calls started",
    );
    const signalledAt = performance.now();
    sidecar.proc.kill("SIGTERM");

    const ready = await fresh(new URL("/ready", sidecar.url));
    const health = await fresh(new URL("/health", sidecar.url));
    await sidecar.proc.waitForLine(
      (l) => jsonLine(l)?.msg === "drain started" || jsonLine(l)?.msg === "signal received: draining",
    );
    const late = await lateRequests(sidecar.url, 50);

    const results = await Promise.all(calls);
    const streamEnds = await Promise.all(
      getStreams.map((s) =>
        s.ended.then(
          (text) => ({ clean: true, text }),
          () => ({ clean: false, text: "" }),
        ),
      ),
    );
    const { code } = await sidecar.proc.exited;
    const exitedAt = performance.now();

    const stopped = logLine(sidecar.proc, "sidecar stopped");
    const numbers = {
      inFlightAtSignal: CLIENTS + getStreams.length,
      callsCompleted: results.filter((r) => r.ok).length,
      callsFailed: results.filter((r) => !r.ok).length,
      resets: results.filter((r) => r.failure === "reset").length + late.resets,
      late,
      longestCallMs: Math.round(lastCallEnd - started),
      drainMs: Math.round(exitedAt - signalledAt),
      exitAfterLastCallMs: Math.round(exitedAt - lastCallEnd),
      exitCode: code,
    };
    console.log("drain numbers (SDK 1.x, 200 clients):", JSON.stringify(numbers));

    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text)).toMatchObject({ status: "not_ready", state: "draining" });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toMatchObject({ status: "ok", state: "draining" });
    expect(numbers.callsFailed).toBe(0);
    expect(numbers.callsCompleted).toBe(CLIENTS);
    expect(late).toEqual({
      status503: 50,
      withJsonRpcId: 50,
      withRetryAfter: 50,
      withConnectionClose: 50,
      resets: 0,
      refused: 0,
      other: 0,
    });
    for (const end of streamEnds) {
      expect(end.clean).toBe(true);
      expect(end.text).toMatch(/retry: 2000\n\n$/);
    }
    expect(code).toBe(0);
    expect(stopped).toMatchObject({ reason: "drained", cut: 0, exitCode: 0 });
    // Exits when the work is done, not at the 25 s drain timeout.
    expect(numbers.drainMs).toBeLessThan(20_000);
    await Promise.all(clients.map(({ client }) => client.close()));
  }, 120_000);

  it("2026-07-28 (SDK 2.x): tools/call streams run to their end, subscriptions/listen streams are closed cleanly, exit 0", async () => {
    let upstream: Server | undefined;
    try {
      const started = await startSdk2Server();
      upstream = started.server;
      const sidecar = await startSidecarProcess(["--upstream", started.url.origin]);
      const mcpUrl = new URL("/mcp", sidecar.url);
      const CLIENTS = 40;
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          const client = new Sdk2Client(
            { name: "drain-2026", version: "1.0.0" },
            { versionNegotiation: { mode: { pin: "2026-07-28" } } },
          );
          await client.connect(new Sdk2Transport(mcpUrl));
          return client;
        }),
      );
      const subscriptions = await Promise.all(
        clients.slice(0, 10).map((client) => client.listen({ toolsListChanged: true })),
      );
      let slowStarted = 0;
      const allStarted = Promise.withResolvers<void>();
      const onTool = () => {
        if (++slowStarted === CLIENTS) allStarted.resolve();
      };
      toolEvents.on("tool", onTool);
      const calls = clients.map((client, i) => {
        const progress: number[] = [];
        const ms = 300 + ((i * 53) % 1700);
        return client
          .callTool(
            { name: "slow", arguments: { ms, steps: 3 } },
            i % 2 === 0 ? { onprogress: (p) => progress.push(p.progress) } : {},
          )
          .then(
            (result) =>
              (result.content as { text: string }[])[0]?.text === `waited ${ms} ms` &&
              (i % 2 !== 0 || progress.length === 3),
            () => false,
          );
      });
      await allStarted.promise;
      toolEvents.off("tool", onTool);
      sidecar.proc.kill("SIGTERM");
      const closedHow = await Promise.all(subscriptions.map((s) => s.closed));
      const results = await Promise.all(calls);
      const { code } = await sidecar.proc.exited;
      console.log(
        "drain numbers (SDK 2.x, 2026-07-28):",
        JSON.stringify({
          calls: CLIENTS,
          completed: results.filter(Boolean).length,
          listensClosed: closedHow,
          exitCode: code,
        }),
      );
      expect(results.filter(Boolean)).toHaveLength(CLIENTS);
      for (const how of closedHow) expect(how).not.toBe("local");
      expect(code).toBe(0);
      await Promise.all(clients.map((client) => client.close()));
    } finally {
      if (upstream) await closeHttp(upstream);
    }
  }, 60_000);

  it("server-everything's trigger-long-running-operation runs to its end through a drain", async () => {
    const port = await freePort();
    const everything = startProcess(
      process.execPath,
      [`${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`, "streamableHttp"],
      {
        env: { PORT: String(port) },
      },
    );
    await everything.waitForLine((line) => line.includes("listening on port"));
    const sidecar = await startSidecarProcess(["--upstream", `http://127.0.0.1:${port}`]);
    const mcpUrl = new URL("/mcp", sidecar.url);
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const client = new Client({ name: "drain-everything", version: "1.0.0" });
        client.onerror = () => {};
        await client.connect(new StreamableHTTPClientTransport(mcpUrl));
        return client;
      }),
    );
    let progressSeen = 0;
    const firstProgress = Promise.withResolvers<void>();
    const calls = clients.map((client) =>
      client
        .callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
          undefined,
          {
            onprogress: () => {
              if (++progressSeen === 1) firstProgress.resolve();
            },
          },
        )
        .then(
          (result) => (result.content as { text: string }[])[0]?.text.includes("completed") ?? false,
          () => false,
        ),
    );
    await firstProgress.promise; // the calls are under way, mid-operation
    sidecar.proc.kill("SIGTERM");
    const results = await Promise.all(calls);
    const { code } = await sidecar.proc.exited;
    expect(results.filter(Boolean)).toHaveLength(20);
    expect(progressSeen).toBeGreaterThanOrEqual(20 * 3);
    expect(code).toBe(0);
    await Promise.all(clients.map((client) => client.close()));
  }, 60_000);

  it("legacy HTTP+SSE (server-everything sse): answers due on the GET stream arrive before it ends, later POSTs get 503, exit 0", async () => {
    const port = await freePort();
    const everything = startProcess(
      process.execPath,
      [`${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`, "sse"],
      { env: { PORT: String(port) } },
    );
    await everything.waitForLine((line) => line.includes("running on port"));
    const sidecar = await startSidecarProcess(["--upstream", `http://127.0.0.1:${port}`]);
    const sseUrl = new URL("/sse", sidecar.url);
    // SDK 1.x legacy clients: each POST gets 202, its answer comes on the client's GET stream.
    const clients = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const client = new Client({ name: "drain-legacy", version: "1.0.0" });
        client.onerror = () => {};
        await client.connect(new SSEClientTransport(sseUrl));
        return client;
      }),
    );
    // One raw stream too, to see exactly how it ends.
    const raw = await openStream(sseUrl);
    const endpoint = (await raw.waitFor((t) => /event: endpoint\r?\ndata: (\S+)/.test(t))).match(
      /event: endpoint\r?\ndata: (\S+)/,
    )?.[1] as string;
    const post = (id: number, name: string, args: Record<string, unknown>) =>
      fresh(new URL(endpoint, sidecar.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } }),
      });
    await post(0, "echo", { message: "hello" });
    await raw.waitFor((t) => t.includes('"id":0'));
    let progressSeen = 0;
    const firstProgress = Promise.withResolvers<void>();
    const calls = clients.map((client) =>
      client
        .callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
          undefined,
          {
            onprogress: () => {
              if (++progressSeen === 1) firstProgress.resolve();
            },
          },
        )
        .then(
          (result) => (result.content as { text: string }[])[0]?.text.includes("completed") ?? false,
          () => false,
        ),
    );
    expect((await post(77, "trigger-long-running-operation", { duration: 2, steps: 2 })).status).toBe(202);
    await firstProgress.promise; // the calls are under way, their answers still due on the streams
    sidecar.proc.kill("SIGTERM");
    await sidecar.proc.waitForLine((line) => jsonLine(line)?.msg === "drain started");
    // New work on a draining legacy session is refused, cleanly.
    const late = await post(78, "echo", { message: "late" });
    expect(late.status).toBe(503);
    expect(late.json()).toMatchObject({ id: 78, error: { data: { code: "MCP_SIDECAR_DRAINING" } } });
    const results = await Promise.all(calls);
    const rawText = await raw.ended;
    const { code } = await sidecar.proc.exited;
    expect(results.filter(Boolean)).toHaveLength(10);
    // The raw stream got its answer, then a retry: field, then its end: nothing cut.
    expect(rawText).toMatch(/"result":.*"id":77}/);
    expect(rawText.indexOf('"id":77')).toBeLessThan(rawText.lastIndexOf("retry: 2000"));
    expect(rawText.endsWith("retry: 2000\n\n")).toBe(true);
    expect(code).toBe(0);
    expect(logLine(sidecar.proc, "sidecar stopped")).toMatchObject({ reason: "drained", cut: 0 });
    await Promise.all(clients.map((client) => client.close()));
  }, 60_000);

  it("at the drain timeout, cuts what is left, logs method, tool and age, and exits 1", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecarProcess(["--upstream", server.origin, "--drain-timeout", "1s"]);
    const client = new Client({ name: "drain-timeout", version: "1.0.0" });
    client.onerror = () => {};
    await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", sidecar.url)));
    const call = client.callTool({ name: "slow", arguments: { ms: 30_000, steps: 2 } }).then(
      () => "completed",
      () => "failed",
    );
    await server.proc.waitForLine((l) => jsonLine(l)?.tool === "slow");
    sidecar.proc.kill("SIGTERM");
    const { code } = await sidecar.proc.exited;
    expect(code).toBe(1);
    const cut = logLine(sidecar.proc, "request cut by drain");
    expect(cut).toMatchObject({
      level: "warn",
      method: "POST",
      mcpMethod: "tools/call",
      tool: "slow",
      ageMs: expect.any(Number),
    });
    expect(logLine(sidecar.proc, "sidecar stopped")).toMatchObject({
      reason: "timeout",
      cut: expect.any(Number),
      exitCode: 1,
    });
    await client.close();
    expect(await call).toBe("failed");
  });

  it("a second SIGTERM stops at once", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecarProcess(["--upstream", server.origin, "--drain-timeout", "60s"]);
    const client = new Client({ name: "second-signal", version: "1.0.0" });
    client.onerror = () => {};
    await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", sidecar.url)));
    void client.callTool({ name: "slow", arguments: { ms: 60_000 } }).catch(() => {});
    await server.proc.waitForLine((l) => jsonLine(l)?.tool === "slow");
    sidecar.proc.kill("SIGTERM");
    await sidecar.proc.waitForLine((l) => jsonLine(l)?.msg === "drain started");
    sidecar.proc.kill("SIGTERM");
    const { code } = await sidecar.proc.exited;
    expect(code).toBe(1);
    expect(logLine(sidecar.proc, "second signal: stopping now")).toBeDefined();
    expect(logLine(sidecar.proc, "sidecar stopped")).toMatchObject({ reason: "forced" });
    await client.close();
  });

  it("with --drain-delay, keeps serving while /ready fails, then drains", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecarProcess(["--upstream", server.origin, "--drain-delay", "5s"]);
    sidecar.proc.kill("SIGTERM");
    await sidecar.proc.waitForLine((l) => jsonLine(l)?.msg === "drain started");
    const ready = await fresh(new URL("/ready", sidecar.url));
    const served = await fresh(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT_BOTH },
      body: initializeBody("k8s-late"),
    });
    expect(ready.status).toBe(503);
    expect(served.status).toBe(200);
    expect((await sidecar.proc.exited).code).toBe(0);
  });
});
