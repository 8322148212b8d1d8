// The library API mirrors SIGTERM: close() is the graceful drain (idempotent), destroy() is immediate.
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { SIDECAR_ERRORS } from "../proxy/errors.ts";
import { createSidecar } from "../proxy/index.ts";
import { deferred, openStream, rawExchange, send, WEBSOCKET_UPGRADE } from "./helpers/client.ts";
import { useTestUpstream } from "./helpers/fixtures.ts";
import { startSidecar } from "./helpers/sidecar.ts";
import { readBody } from "./helpers/upstream.ts";

const upstream = useTestUpstream();

describe("Sidecar.close()", () => {
  it("waits for an in-flight call, answers new work 503 (an upgrade too), and resolves drained; a second call returns the same outcome", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      await release.promise;
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    const { sidecar, url } = await startSidecar(upstream.url);
    const call = send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
    });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    const closing = sidecar.close();
    expect(sidecar.close()).toBe(closing);
    expect(sidecar.phase).toBe("draining");
    const late = await send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":7,"method":"tools/list"}',
    });
    expect(late.status).toBe(503);
    expect(late.json()).toMatchObject({ id: 7, error: { data: { code: "MCP_SIDECAR_DRAINING" } } });
    const body = `{"error":{"code":"MCP_SIDECAR_DRAINING","status":503,"message":"${SIDECAR_ERRORS.draining.description}"}}`;
    expect(await rawExchange(url, WEBSOCKET_UPGRADE)).toBe(
      `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nretry-after: 2\r\nconnection: close\r\n\r\n${body}`,
    );
    release.resolve();
    expect((await call).status).toBe(200);
    expect(await closing).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
  });

  it("ends an endless SSE GET stream with a retry: field and waits for nothing else", async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("id: 1\ndata: hello\n\n");
    });
    const { sidecar, url } = await startSidecar(upstream.url, ["--drain-retry-after", "3s"]);
    const stream = await openStream(new URL("/mcp", url));
    await stream.waitFor((t) => t.includes("hello"));
    expect(await sidecar.close()).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
    expect(await stream.ended).toBe("id: 1\ndata: hello\n\nretry: 3000\n\n");
  });

  it("lets a half-written upstream event finish before ending the stream", async () => {
    const finish = deferred();
    upstream.handle(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: part");
      await finish.promise;
      res.write("-two\n\ndata: next\n\n");
    });
    const { sidecar, url } = await startSidecar(upstream.url);
    const stream = await openStream(new URL("/mcp", url));
    await stream.waitFor((t) => t.includes("part"));
    const closing = sidecar.close();
    finish.resolve();
    await closing;
    // Chunks are forwarded whole: the stream ends at the first event boundary after the close.
    expect(await stream.ended).toBe("data: part-two\n\ndata: next\n\nretry: 2000\n\n");
  });

  it("closes a 2026-07-28 subscriptions/listen POST without a retry: field", async () => {
    upstream.handle((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(
        'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged"}\n\n',
      );
    });
    const { sidecar, url } = await startSidecar(upstream.url);
    const stream = await openStream(new URL("/mcp", url), {
      method: "POST",
      headers: {
        "mcp-method": "subscriptions/listen",
        "mcp-protocol-version": "2026-07-28",
        "content-type": "application/json",
      },
      body: '{"jsonrpc":"2.0","id":"listen:0","method":"subscriptions/listen","params":{}}',
    });
    await stream.waitFor((t) => t.includes("acknowledged"));
    await sidecar.close();
    expect(await stream.ended).not.toContain("retry:");
  });
});

describe("Sidecar.close() edge cases", () => {
  it("counts work that arrives during --drain-delay, and waits for it", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      await release.promise;
      res.end("{}");
    });
    const { sidecar, url } = await startSidecar(upstream.url, [
      "--drain-delay",
      "300ms",
      "--ready-probe",
      "tcp",
    ]);
    const closing = sidecar.close();
    let settled = false;
    void closing.then(() => {
      settled = true;
    });
    // Still serving during the delay: this call is accepted and must not be cut when it ends.
    const call = send(new URL("/mcp", url), { method: "POST", body: "{}" });
    await expect.poll(() => upstream.seen.length).toBe(1);
    await expect.poll(() => sidecar.phase, { timeout: 5000 }).toBe("draining");
    expect(settled).toBe(false);
    release.resolve();
    expect((await call).status).toBe(200);
    expect(await closing).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
  });

  it("answers a late client that stalls its upload 503 without waiting for the body, and still drains", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      await release.promise;
      res.end("{}");
    });
    const { sidecar, url } = await startSidecar(upstream.url, ["--ready-probe", "tcp"]);
    const call = send(new URL("/mcp", url), { method: "POST", body: "{}" });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    const closing = sidecar.close();
    const late = httpRequest(new URL("/mcp", url), { method: "POST", headers: { "content-length": "100" } });
    late.write('{"jsonrpc":"2.0",');
    const [response] = (await once(late, "response")) as [import("node:http").IncomingMessage];
    expect(response.statusCode).toBe(503);
    late.destroy();
    release.resolve();
    await call;
    expect(await closing).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
  });
});

describe("Sidecar.destroy()", () => {
  it("cuts what is in flight at once and reports it", async () => {
    upstream.handle((req) => {
      req.resume();
    });
    const { sidecar, url, logs } = await startSidecar(upstream.url);
    const call = send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}',
    });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    // The cut resets the call before destroy() resolves (that waits for answers written instead).
    const reset = expect(call).rejects.toThrow();
    expect(await sidecar.destroy()).toEqual({ exitCode: 1, cut: 1, reason: "forced" });
    await reset;
    expect(logs.find((line) => line.msg === "request cut by drain")).toMatchObject({
      tool: "slow",
      mcpMethod: "tools/call",
    });
  });

  it("after close(), listen() is an error and binds nothing, as undici's dispatchers refuse work after close", async () => {
    const { sidecar, url } = await startSidecar(upstream.url);
    expect(await sidecar.listen()).toBe(url);
    await sidecar.close();
    await expect(sidecar.listen()).rejects.toMatchObject({
      name: "SidecarClosedError",
      code: "ERR_MCP_SIDECAR_CLOSED",
    });
    await expect(send(new URL("/health", url))).rejects.toThrow(/ECONNREFUSED/);
    const never = createSidecar(sidecar.config);
    await never.destroy();
    await expect(never.listen()).rejects.toThrow("the sidecar was closed");
  });

  it("after close() finished, is a no-op with the same outcome", async () => {
    const { sidecar } = await startSidecar(upstream.url);
    const outcome = await sidecar.close();
    expect(await sidecar.destroy()).toBe(outcome);
  });
});

describe("Sidecar.close(): what the drain does to connections", () => {
  it("answers a call that finishes during the drain with Connection: close", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      await release.promise;
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    const { sidecar, url } = await startSidecar(upstream.url);
    const call = send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
    });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    const closing = sidecar.close();
    release.resolve();
    const response = await call;
    expect(response.status).toBe(200);
    // The client's next request goes to a new connection, through the load balancer, elsewhere.
    expect(response.headers.connection).toBe("close");
    await closing;
  });

  it("closes idle keep-alive connections when the drain starts, while a call is still in flight", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      if (req.url === "/slow") await release.promise;
      res.writeHead(200, { "content-type": "application/json", "content-length": "2" });
      res.end("{}");
    });
    const { sidecar, url } = await startSidecar(upstream.url);
    // A keep-alive connection that has had its answer and now sits idle.
    const idle = connect(Number(url.port), "127.0.0.1");
    idle.setEncoding("utf8");
    let received = "";
    let idleClosed = false;
    idle.on("data", (chunk: string) => {
      received += chunk;
    });
    idle.on("close", () => {
      idleClosed = true;
    });
    idle.write("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n");
    await expect.poll(() => received.endsWith("{}")).toBe(true);
    expect(received).toMatch(/keep-alive/i);
    const call = send(new URL("/slow", url), { method: "POST", body: "{}" });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    const closing = sidecar.close();
    // Closed by the drain itself, not by the end of the process: the call is still held.
    await expect.poll(() => idleClosed).toBe(true);
    expect(sidecar.phase).toBe("draining");
    release.resolve();
    expect((await call).status).toBe(200);
    await closing;
  });

  it("waits for its own 503 to a late client before stopping, even when the last call ends first", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      await release.promise;
      res.end("{}");
    });
    const { sidecar, url } = await startSidecar(upstream.url, ["--ready-probe", "tcp"]);
    const call = send(new URL("/mcp", url), { method: "POST", body: "{}" });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    const closing = sidecar.close();
    // A late client whose body is still arriving: its 503 waits for the body, to quote the id.
    const body = '{"jsonrpc":"2.0","id":"late-1","method":"tools/list"}';
    const late = httpRequest(new URL("/mcp", url), {
      method: "POST",
      headers: { "content-length": String(body.length) },
    });
    const responded = once(late, "response");
    late.write(body.slice(0, 10));
    await expect.poll(() => sidecar.inFlight).toBe(2);
    // The last call ends while the 503 is still being prepared: the drain must not stop yet.
    release.resolve();
    expect((await call).status).toBe(200);
    late.end(body.slice(10));
    const [response] = (await responded) as [import("node:http").IncomingMessage];
    expect(response.statusCode).toBe(503);
    expect(JSON.parse((await readBody(response)).toString())).toMatchObject({
      id: "late-1",
      error: { data: { code: "MCP_SIDECAR_DRAINING" } },
    });
    expect(await closing).toEqual({ exitCode: 0, cut: 0, reason: "drained" });
  });
});
