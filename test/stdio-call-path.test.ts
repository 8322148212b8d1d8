// A stdio session's calls answered by the sidecar itself (answer-streams.ts), with a real sidecar
// and a real stdio child: what the client sees is what the MCP SDK's Streamable HTTP transport
// would have written, and everything the SDK must judge still reaches it. Waits on events (an
// answer, a stream's end, a log line), never on time.

import { afterEach, describe, expect, it } from "vitest";
import { initializeBody, openStream, send } from "./helpers/client.ts";
import { jsonLine, startSidecarProcess, stopAllProcesses } from "./helpers/processes.ts";
import { TEST_SERVER } from "./helpers/stdio.ts";

afterEach(stopAllProcesses);

const ACCEPT = "application/json, text/event-stream";

/** A sidecar running the test server, and one session on it past its handshake. */
async function session(args: readonly string[] = []) {
  const sidecar = await startSidecarProcess(["--stdio", TEST_SERVER, ...args]);
  const mcp = new URL("/mcp", sidecar.url);
  const init = await send(mcp, {
    method: "POST",
    headers: { "content-type": "application/json", accept: ACCEPT },
    body: initializeBody("call-path"),
  });
  expect(init.status).toBe(200);
  const sessionId = String(init.headers["mcp-session-id"]);
  const headers = {
    "content-type": "application/json",
    accept: ACCEPT,
    "mcp-session-id": sessionId,
    "mcp-protocol-version": "2025-11-25",
  };
  const initialized = await send(mcp, {
    method: "POST",
    headers,
    body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
  });
  expect(initialized.status).toBe(202);
  const post = (body: unknown, extra: Record<string, string> = {}) =>
    send(mcp, { method: "POST", headers: { ...headers, ...extra }, body: JSON.stringify(body) });
  return { sidecar, mcp, sessionId, headers, post };
}

const call = (id: unknown, name: string, args: Record<string, unknown> = {}, extra: object = {}) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args },
  ...extra,
});

/** The headers a client acts on (the date and the framing are Node's own). */
const sseHeaders = (headers: Record<string, unknown>) => ({
  "content-type": headers["content-type"],
  "cache-control": headers["cache-control"],
  connection: headers.connection,
  "x-accel-buffering": headers["x-accel-buffering"],
  "mcp-session-id": headers["mcp-session-id"],
});

describe("--stdio calls answered by the sidecar", () => {
  it("answer a call with what the SDK's transport writes: the same status, headers and event", async () => {
    const { post, sessionId } = await session();
    const own = await post(call(2, "echo", { message: "same" }));
    // A batch of one is the SDK transport's to answer (the sidecar takes single requests only).
    const sdk = await post([call(3, "echo", { message: "same" })]);
    expect(own.status).toBe(200);
    expect(own.status).toBe(sdk.status);
    expect(sseHeaders(own.headers)).toEqual(sseHeaders(sdk.headers));
    expect(own.headers["mcp-session-id"]).toBe(sessionId);
    expect(own.text).toBe(sdk.text.replace('"id":3', '"id":2'));
    expect(own.text).toMatch(/^event: message\ndata: \{.*"text":"same".*\}\n\n$/);
  });

  it("leave to the SDK what it must judge: its 406, 415 and 400s, word for word", async () => {
    const { post } = await session();
    const refused = [
      await post(call(4, "echo", { message: "x" }), { accept: "application/json" }),
      await post(call(5, "echo", { message: "x" }), { "content-type": "text/plain" }),
      await post(call(6, "echo", { message: "x" }), { "mcp-protocol-version": "1999-01-01" }),
      await post(call(7, "echo", { message: "x" }, { extra: true })),
      await post(call(8.5, "echo", { message: "x" })),
      await post({ jsonrpc: "2.0", id: 9, method: "tools/call", params: [] }),
    ];
    expect(refused.map((r) => r.status)).toEqual([406, 415, 400, 400, 400, 400]);
    expect(refused.map((r) => (r.json() as { error: { message: string } }).error.message)).toEqual([
      "Not Acceptable: Client must accept both application/json and text/event-stream",
      "Unsupported Media Type: Content-Type must be application/json",
      expect.stringMatching(/^Bad Request: Unsupported protocol version: 1999-01-01/),
      "Parse error: Invalid JSON-RPC message",
      "Parse error: Invalid JSON-RPC message",
      "Parse error: Invalid JSON-RPC message",
    ]);
    // A _meta key of the client's own is forwarded as it is.
    const withMeta = await post({
      ...call(11, "echo", { message: "meta" }),
      params: { name: "echo", arguments: { message: "meta" }, _meta: { "example.com/trace": "t" } },
    });
    expect(withMeta.status).toBe(200);
    expect(withMeta.text).toContain('"id":11');
  });

  it("carry a call's progress on its stream, before its answer", async () => {
    const { post } = await session();
    const slow = await post({
      ...call(12, "slow", { ms: 40 }),
      params: { name: "slow", arguments: { ms: 40 }, _meta: { progressToken: "p" } },
    });
    const events = slow.text.split("\n\n").filter(Boolean);
    expect(
      events.map((e) => (JSON.parse(e.split("data: ")[1] as string) as { method?: string }).method),
    ).toEqual([
      "notifications/progress",
      "notifications/progress",
      "notifications/progress",
      "notifications/progress",
      undefined,
    ]);
    expect(events.at(-1)).toContain('"id":12');
  });

  it("keep a long call's stream alive with SSE comments, then answer it", async () => {
    const { mcp, headers } = await session(["--sse-keepalive", "50ms"]);
    const stream = await openStream(mcp, {
      method: "POST",
      headers,
      body: JSON.stringify(call(13, "slow", { ms: 2000 })),
    });
    expect(stream.status).toBe(200);
    await stream.waitFor((text) => text.startsWith(": keepalive\n\n"), "a keepalive before the answer");
    const text = await stream.ended;
    expect(text).toMatch(/: keepalive\n\n(.|\n)*event: message\ndata: .*"slept 2000 ms".*\n\n$/);
  });

  it("outlive a client that leaves mid-call: the late answer is dropped, the session's next call served", async () => {
    const { sidecar, mcp, headers, post } = await session();
    const stream = await openStream(mcp, {
      method: "POST",
      headers,
      body: JSON.stringify(call(14, "slow", { ms: 300 })),
    });
    stream.abort();
    await sidecar.proc.waitForLine(
      (line) => jsonLine(line)?.outcome === "client_closed",
      "the abandoned call summed up",
    );
    // The abandoned call's answer comes while this one waits on the same child: only this one's is delivered.
    const next = await post(call(15, "slow_pid", { ms: 500 }));
    expect(next.status).toBe(200);
    expect(next.text).toContain('"id":15');
    expect(next.text).not.toContain('"id":14');
  });

  it("end a call's stream when its session is deleted under it", async () => {
    const { mcp, headers } = await session();
    const stream = await openStream(mcp, {
      method: "POST",
      headers,
      body: JSON.stringify(call(16, "hang")),
    });
    expect(stream.status).toBe(200);
    const deleted = await send(mcp, { method: "DELETE", headers });
    expect(deleted.status).toBe(200);
    expect(await stream.ended).not.toContain('"id":16');
  });

  it("let a cancelled call go: its stream ends, and it no longer keeps its session from being idle", async () => {
    const { sidecar, mcp, headers, post } = await session(["--session-idle-timeout", "300ms"]);
    const stream = await openStream(mcp, {
      method: "POST",
      headers,
      body: JSON.stringify(call(17, "until_cancelled")),
    });
    expect(stream.status).toBe(200);
    const cancel = await post({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: 17 },
    });
    expect(cancel.status).toBe(202);
    // The SDK's server leaves a cancelled request unanswered: its stream ends without an answer.
    expect(await stream.ended).not.toContain('"id":17');
    const exit = await sidecar.proc.waitForLine(
      (line) => jsonLine(line)?.msg === "stdio server exited",
      "the idle session's child stopped",
    );
    expect(jsonLine(exit)).toMatchObject({ cause: "stopped" });
  });
});
