// The legacy HTTP+SSE transport (2024-11-05) in front of a stdio server: one child per SSE stream,
// with the SDK 1.x SSE client and raw streams, real processes and signals. Waits on events, never
// on time.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { shortHash } from "../proxy/telemetry/short-hash.ts";
import { openStream, send } from "./helpers/client.ts";
import { jsonLine, startSidecarProcess, stopAllProcesses } from "./helpers/processes.ts";
import { EVERYTHING, TEST_SERVER, textOf } from "./helpers/stdio.ts";

afterEach(stopAllProcesses);

/** The endpoint a legacy stream's first event names. */
const endpointOf = (text: string) => /event: endpoint\ndata: (\S+)/.exec(text)?.[1];

const post = (url: URL, target: string, message: unknown) =>
  send(new URL(target, url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(message),
  });

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};

async function metric(url: URL, line: string): Promise<number> {
  const text = (await send(new URL("/metrics", url))).text;
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.split(" ").at(-1));
}

describe("--stdio over the legacy HTTP+SSE transport", () => {
  it("the SDK 1.x SSE client through server-everything: a child per stream, calls answered on it, stopped when the stream closes", async () => {
    const sidecar = await startSidecarProcess(["--stdio", EVERYTHING]);
    const client = new Client({ name: "legacy-test", version: "1.0.0" });
    await client.connect(new SSEClientTransport(new URL("/sse", sidecar.url)));
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("get-sum");
    const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } });
    expect(textOf(sum)).toContain("5");
    await client.close();
    await sidecar.proc.waitForLine((l) => jsonLine(l)?.msg === "stdio server exited");
    expect(await metric(sidecar.url, 'mcp_sidecar_stdio_sessions_ended_total{reason="disconnected"}')).toBe(
      1,
    );
  });

  it("names the session in its endpoint, and its child's log lines by the same session; unknown sessions 404", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const stream = await openStream(new URL("/sse", sidecar.url));
    expect(stream.status).toBe(200);
    await stream.waitFor((text) => endpointOf(text) !== undefined, "the endpoint event");
    const endpoint = endpointOf(stream.text()) as string;
    const sessionId = new URL(endpoint, sidecar.url).searchParams.get("sessionId") as string;
    expect(new URL(endpoint, sidecar.url).pathname).toBe("/sse");
    expect((await post(sidecar.url, endpoint, INITIALIZE)).status).toBe(202);
    await stream.waitFor((text) => text.includes('"id":0'), "the initialize answer");
    expect(
      (
        await post(sidecar.url, endpoint, {
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "pid" },
        })
      ).status,
    ).toBe(202);
    await stream.waitFor((text) => text.includes('"id":1'), "the call's answer");
    const pid = Number(/"text":"(\d+)"/.exec(stream.text())?.[1]);

    const unknown = await post(sidecar.url, "/sse?sessionId=nope", { jsonrpc: "2.0", id: 2, method: "ping" });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({
      id: 2,
      error: { data: { code: "MCP_SIDECAR_SESSION_NOT_FOUND" } },
    });
    // A legacy session is not a Streamable HTTP one.
    const crossed = await send(new URL("/mcp", sidecar.url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sessionId,
      },
      body: '{"jsonrpc":"2.0","id":3,"method":"ping"}',
    });
    expect(crossed.status).toBe(404);

    stream.abort();
    await sidecar.proc.waitForLine((l) => jsonLine(l)?.msg === "stdio server exited");
    const exited = sidecar.proc.lines.map(jsonLine).find((l) => l?.msg === "stdio server exited");
    expect(exited).toMatchObject({ session: shortHash(sessionId), pid, cause: "stopped" });
  });

  it("counts a call by how it ended on the stream, not by its 202, and logs it then", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const stream = await openStream(new URL("/sse", sidecar.url));
    await stream.waitFor((text) => endpointOf(text) !== undefined, "the endpoint event");
    const endpoint = endpointOf(stream.text()) as string;
    expect((await post(sidecar.url, endpoint, INITIALIZE)).status).toBe(202);
    await stream.waitFor((text) => text.includes('"id":0'), "the initialize answer");
    const call = (id: number, name: string, args: object) =>
      post(sidecar.url, endpoint, {
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name, arguments: args },
      });
    // A tool error (an unknown tool: the SDK's McpServer answers a result with isError), a crash.
    expect((await call(1, "no_such_tool", {})).status).toBe(202);
    await stream.waitFor((text) => text.includes('"id":1'), "the tool error");
    expect((await call(2, "slow", { ms: 400 })).status).toBe(202);
    const logged = await sidecar.proc.waitForLine((l) => {
      const line = jsonLine(l);
      return line?.msg === "request" && line.mcpMethod === "tools/call" && line.tool === "slow";
    }, "the slow call's access log line");
    // Logged when its answer came, not at its 202: it took the call's 400 ms.
    expect(Number(jsonLine(logged)?.durationMs)).toBeGreaterThanOrEqual(400);
    expect(stream.text()).toContain("slept 400 ms");
    const text = (await send(new URL("/metrics", sidecar.url))).text;
    const calls = text
      .split("\n")
      .filter((l) => l.startsWith("mcp_sidecar_mcp_calls_total{") && l.includes("tools/call"));
    expect(calls.some((l) => l.includes('outcome="tool_error"') && l.endsWith(" 1"))).toBe(true);
    expect(calls.some((l) => l.includes('tool="slow"') && l.includes('outcome="result"'))).toBe(true);
    // A call the stream's end leaves unanswered is over with its session: cancelled, not in flight forever.
    expect((await call(3, "hang", {})).status).toBe(202);
    stream.abort();
    const hung = await sidecar.proc.waitForLine((l) => {
      const line = jsonLine(l);
      return line?.msg === "request" && line.tool === "hang";
    }, "the unanswered call's access log line");
    expect(jsonLine(hung)).toMatchObject({ status: 202, outcome: "client_closed", mcpOutcome: "cancelled" });
  });

  it("a Streamable HTTP client's GET without a session (its stream reconnecting after a DELETE) gets 400, not a legacy session", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--stdio-spares", "0"]);
    const reconnect = await send(new URL("/mcp", sidecar.url), {
      headers: { accept: "text/event-stream", "mcp-protocol-version": "2025-11-25" },
    });
    expect(reconnect.status).toBe(400);
    expect(reconnect.json()).toMatchObject({ error: { code: "MCP_SIDECAR_SESSION_REQUIRED" } });
    expect(await metric(sidecar.url, "mcp_sidecar_stdio_children_started_total")).toBe(0);
  });

  it("keeps a quiet legacy stream alive with SSE comments (--sse-keepalive)", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, "--sse-keepalive", "200ms"]);
    const stream = await openStream(new URL("/sse", sidecar.url));
    await stream.waitFor((text) => text.includes(": keepalive\n\n"), "a keepalive comment");
    expect(stream.text()).toMatch(/^event: endpoint\n/);
    stream.abort();
  });

  it("SIGTERM: a call posted before it is answered on its stream, which then ends with retry:; new POSTs 503; exit 0", async () => {
    const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER]);
    const stream = await openStream(new URL("/sse", sidecar.url));
    await stream.waitFor((text) => endpointOf(text) !== undefined, "the endpoint event");
    const endpoint = endpointOf(stream.text()) as string;
    await post(sidecar.url, endpoint, INITIALIZE);
    await stream.waitFor((text) => text.includes('"id":0'), "the initialize answer");
    const slow = {
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "slow", arguments: { ms: 1200 }, _meta: { progressToken: "p" } },
    };
    expect((await post(sidecar.url, endpoint, slow)).status).toBe(202);
    await stream.waitFor((text) => text.includes("notifications/progress"), "the call's first progress");

    sidecar.proc.kill("SIGTERM");
    await sidecar.proc.waitForLine((l) => jsonLine(l)?.msg === "signal received: draining");
    // On a new connection: the drain closes the idle keep-alive ones, as a client arriving late would.
    const dispatcher = new Agent();
    const late = await send(new URL(endpoint, sidecar.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":8,"method":"ping"}',
      dispatcher,
    });
    await dispatcher.close();
    expect(late.status).toBe(503);

    const text = await stream.ended;
    expect(text).toContain('"id":7');
    expect(text).toContain("slept 1200 ms");
    // The answer first, then retry:, then the end.
    expect(text.indexOf("retry: ")).toBeGreaterThan(text.indexOf('"id":7'));
    expect((await sidecar.proc.exited).code).toBe(0);
  });
});
