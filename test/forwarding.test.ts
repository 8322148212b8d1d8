// The forwarding path against a scriptable upstream: streaming both ways, keepalives, statuses,
// headers, limits, upstream failures, readiness. Real HTTP servers and clients on 127.0.0.1.

import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { SIDECAR_ERRORS } from "../proxy/errors.ts";
import { SIDECAR_JSONRPC_ERROR_CODE } from "../proxy/protocol/jsonrpc.ts";
import { deferred, openStream, rawExchange, send, WEBSOCKET_UPGRADE } from "./helpers/client.ts";
import { useTestUpstream } from "./helpers/fixtures.ts";
import { closeHttp, freePort, listenHttp } from "./helpers/net.ts";
import { startSidecar } from "./helpers/sidecar.ts";
import { answerJsonRpc, readBody } from "./helpers/upstream.ts";

const upstream = useTestUpstream();

describe("streaming", () => {
  it("delivers the first SSE event before the upstream ends the stream", async () => {
    const firstSeenByClient = deferred();
    upstream.handle(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('event: message\ndata: {"n":1}\n\n');
      // The upstream only ends once the client has the first event: a buffering proxy deadlocks here.
      await firstSeenByClient.promise;
      res.end('event: message\ndata: {"n":2}\n\n');
    });
    const { url } = await startSidecar(upstream.url);
    const stream = await openStream(new URL("/mcp", url));
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    await stream.waitFor((text) => text.includes('data: {"n":1}\n\n'), "the first event");
    expect(stream.text()).not.toContain('"n":2');
    firstSeenByClient.resolve();
    expect(await stream.ended).toBe('event: message\ndata: {"n":1}\n\nevent: message\ndata: {"n":2}\n\n');
  });

  it("streams the request body to the upstream as it arrives", async () => {
    const firstChunkAtUpstream = deferred<string>();
    upstream.handle((req, res) => {
      let all = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => {
        if (all === "") firstChunkAtUpstream.resolve(chunk);
        all += chunk;
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(all);
      });
    });
    const { url } = await startSidecar(upstream.url);
    const req = httpRequest(new URL("/upload", url), {
      method: "POST",
      headers: { "transfer-encoding": "chunked" },
    });
    const responded = once(req, "response");
    req.write("first-part;");
    // The client sends its second part only after the upstream holds the first.
    expect(await firstChunkAtUpstream.promise).toBe("first-part;");
    req.end("second-part");
    const [response] = (await responded) as [import("node:http").IncomingMessage];
    expect((await readBody(response)).toString()).toBe("first-part;second-part");
  });

  it("passes a large body through byte for byte", async () => {
    upstream.handle(async (req, res) => {
      const body = await readBody(req);
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(body);
    });
    const { url } = await startSidecar(upstream.url);
    const payload = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 0xff;
    const response = await fetch(new URL("/blob", url), { method: "POST", body: payload });
    expect(Buffer.from(await response.arrayBuffer()).equals(payload)).toBe(true);
  });

  it("aborts the upstream request when the client goes away", async () => {
    const upstreamSawClose = deferred();
    upstream.handle((req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": open\n\n");
      res.on("close", () => upstreamSawClose.resolve());
      req.resume();
    });
    const { url, logs } = await startSidecar(upstream.url);
    const stream = await openStream(new URL("/mcp", url));
    await stream.waitFor((text) => text.includes(": open"));
    stream.abort();
    await upstreamSawClose.promise;
    await expect.poll(() => logs.find((line) => line.msg === "request")?.outcome).toBe("client_closed");
  });
});

describe("SSE keepalive", () => {
  it("writes a comment on a silent stream, at an event boundary", async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("event: message\ndata: first\n\n");
    });
    const { url } = await startSidecar(upstream.url, ["--sse-keepalive", "50ms"]);
    const stream = await openStream(new URL("/mcp", url));
    const text = await stream.waitFor((t) => t.split(": keepalive\n\n").length >= 3, "two keepalives");
    expect(text.startsWith("event: message\ndata: first\n\n: keepalive\n\n: keepalive\n\n")).toBe(true);
    stream.abort();
  });

  it("never splits an upstream event, however long it is half written", async () => {
    // Stream A stays mid-event; stream B, opened later with the same interval, is idle at a
    // boundary. Once B has had three keepalives, A has been silent for at least three intervals.
    const finishA = deferred();
    upstream.handle(async (req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (req.url === "/a") {
        res.write('event: message\ndata: {"half":');
        await finishA.promise;
        res.end('"done"}\n\n');
      } else {
        res.write("data: b\n\n");
      }
    });
    const { url } = await startSidecar(upstream.url, ["--sse-keepalive", "30ms"]);
    const a = await openStream(new URL("/a", url));
    await a.waitFor((t) => t.includes('{"half":'));
    const b = await openStream(new URL("/b", url));
    await b.waitFor((t) => t.split(": keepalive").length >= 4, "three keepalives on B");
    finishA.resolve();
    expect(await a.ended).toBe('event: message\ndata: {"half":"done"}\n\n');
    b.abort();
  });

  it("is off with --sse-keepalive 0", async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: x\n\n");
    });
    const { url } = await startSidecar(upstream.url, ["--sse-keepalive", "0"]);
    const off = await openStream(new URL("/off", url));
    const { url: url2 } = await startSidecar(upstream.url, ["--sse-keepalive", "20ms"]);
    const on = await openStream(new URL("/on", url2));
    await on.waitFor((t) => t.split(": keepalive").length >= 4);
    expect(off.text()).toBe("data: x\n\n");
    off.abort();
    on.abort();
  });

  it("outlives the request and headers timeouts (they limit receiving the request, never the response)", async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`data: ${++n}\n\n`);
        if (n === 15) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
    });
    const { url } = await startSidecar(upstream.url, [
      "--request-timeout",
      "200ms",
      "--headers-timeout",
      "100ms",
    ]);
    const stream = await openStream(new URL("/long", url));
    const text = await stream.ended;
    expect(text.match(/data: \d+/g)).toHaveLength(15);
  });
});

describe("statuses and headers", () => {
  it.each([200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429, 500, 502, 503])(
    "passes status %d through unchanged",
    async (status) => {
      upstream.handle((_req, res) => {
        const body =
          status === 204
            ? ""
            : JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32000, message: `s${status}` } });
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (status === 401)
          headers["www-authenticate"] =
            'Bearer resource_metadata="http://x/.well-known/oauth-protected-resource"';
        if (status === 405) headers.allow = "POST";
        res.writeHead(status, headers);
        res.end(body);
      });
      const { url } = await startSidecar(upstream.url);
      const direct = await send(new URL("/mcp", upstream.url), { method: "POST", body: "{}" });
      const proxied = await send(new URL("/mcp", url), { method: "POST", body: "{}" });
      expect(proxied.status).toBe(direct.status);
      expect(proxied.text).toBe(direct.text);
      expect(proxied.headers["www-authenticate"]).toBe(direct.headers["www-authenticate"]);
      expect(proxied.headers.allow).toBe(direct.headers.allow);
    },
  );

  it("delivers MCP request headers byte for byte, with Host rewritten and X-Forwarded-* added", async () => {
    const { url } = await startSidecar(upstream.url);
    const sent = [
      "Mcp-Session-Id",
      "4f1c-session",
      "MCP-Protocol-Version",
      "2026-07-28",
      "Last-Event-ID",
      "evt-41",
      "Mcp-Method",
      "tools/call",
      "Mcp-Name",
      "=?base64?w6ljaG8=?=",
      "Accept",
      "application/json, text/event-stream",
      "Content-Type",
      "application/json",
      "Authorization",
      "Bearer client-token",
      "X-Custom",
      "a",
      "X-Custom",
      "b",
    ];
    await send(new URL("/mcp?x=1&y=%20", url), { method: "POST", headers: sent, body: "{}" });
    const seen = upstream.seen.at(-1);
    expect(seen?.url).toBe("/mcp?x=1&y=%20");
    const raw = seen?.rawHeaders ?? [];
    for (let i = 0; i < sent.length; i += 2) {
      const index = raw.findIndex(
        (value, j) => j % 2 === 0 && value === sent[i] && raw[j + 1] === sent[i + 1],
      );
      expect(index, `${sent[i]}: ${sent[i + 1]}`).toBeGreaterThanOrEqual(0);
    }
    const header = (name: string) =>
      raw[raw.findIndex((v, j) => j % 2 === 0 && v.toLowerCase() === name) + 1];
    expect(header("host")).toBe(upstream.url.host);
    expect(header("x-forwarded-for")).toBe("127.0.0.1");
    expect(header("x-forwarded-proto")).toBe("http");
    expect(header("x-forwarded-host")).toBe(url.host);
    expect(header("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("keeps the client's X-Request-Id", async () => {
    const { url, logs } = await startSidecar(upstream.url);
    await send(new URL("/mcp", url), { headers: { "x-request-id": "req-from-client-1" } });
    const raw = upstream.seen.at(-1)?.rawHeaders ?? [];
    expect(raw.filter((v) => v.toLowerCase() === "x-request-id")).toHaveLength(1);
    expect(raw[raw.findIndex((v) => v.toLowerCase() === "x-request-id") + 1]).toBe("req-from-client-1");
    await expect.poll(() => logs.find((l) => l.msg === "request")?.reqId).toBe("req-from-client-1");
  });

  it("returns response headers unchanged, hop-by-hop ones excepted, without compressing", async () => {
    upstream.handle((_req, res) => {
      res.setHeader("Mcp-Session-Id", "sess-7");
      res.setHeader("Cache-Control", "no-cache, no-transform");
      res.setHeader("X-Accel-Buffering", "no");
      res.setHeader("Set-Cookie", ["a=1", "b=2"]);
      res.setHeader("Keep-Alive", "timeout=5");
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end("data: x\n\n");
    });
    const { url } = await startSidecar(upstream.url);
    const response = await send(new URL("/mcp", url), { headers: { "accept-encoding": "gzip, br" } });
    expect(response.headers["mcp-session-id"]).toBe("sess-7");
    expect(response.headers["cache-control"]).toBe("no-cache, no-transform");
    expect(response.headers["x-accel-buffering"]).toBe("no");
    expect(response.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(response.headers["content-encoding"]).toBeUndefined();
    expect(response.headers["keep-alive"]).not.toBe("timeout=5");
    expect(response.text).toBe("data: x\n\n");
  });

  it("answers absolute-form request targets 400 instead of forwarding them", async () => {
    const { url } = await startSidecar(upstream.url);
    const text = await rawExchange(
      url,
      `GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    expect(text).toContain("MCP_SIDECAR_BAD_REQUEST_TARGET");
    expect(upstream.seen).toHaveLength(0);
  });

  it("serves a request carrying an optional h2c upgrade offer as plain HTTP/1.1", async () => {
    const { url } = await startSidecar(upstream.url);
    const socket = connect(Number(url.port), "127.0.0.1");
    socket.write(
      "GET /mcp HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    );
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes('{"ok":true}')) socket.end();
    });
    await once(socket, "close");
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    const raw = upstream.seen.at(-1)?.rawHeaders.map((h) => h.toLowerCase()) ?? [];
    expect(raw).not.toContain("upgrade");
    expect(raw).not.toContain("http2-settings");
  });

  it("replaces an unusable client X-Request-Id with a new one, the same upstream and in the log", async () => {
    const { url, logs } = await startSidecar(upstream.url);
    await send(new URL("/mcp", url), { headers: { "x-request-id": "bad id with spaces" } });
    const raw = upstream.seen.at(-1)?.rawHeaders ?? [];
    const ids = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === "x-request-id");
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    await expect.poll(() => logs.find((l) => l.msg === "request")?.reqId).toBe(ids[0]);
  });

  it("refuses WebSocket upgrades with a complete 501 answer, then closes the connection", async () => {
    const { url } = await startSidecar(upstream.url);
    const body = `{"error":{"code":"MCP_SIDECAR_UPGRADE_NOT_SUPPORTED","status":501,"message":"${SIDECAR_ERRORS.upgradeNotSupported.description}"}}`;
    expect(await rawExchange(url, WEBSOCKET_UPGRADE)).toBe(
      `HTTP/1.1 501 Not Implemented\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    expect(upstream.seen).toHaveLength(0);
  });
});

describe("limits", () => {
  it("answers 413 for a declared body over --max-body-size, without calling the upstream", async () => {
    const { url } = await startSidecar(upstream.url, ["--max-body-size", "1KiB"]);
    const response = await send(new URL("/mcp", url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "x".repeat(2048),
    });
    expect(response.status).toBe(413);
    expect(response.json()).toMatchObject({ error: { code: "MCP_SIDECAR_BODY_TOO_LARGE", status: 413 } });
    expect(response.headers.connection).toBe("close");
    expect(upstream.seen).toHaveLength(0);
  });

  it("answers 413 for a chunked body that grows over the limit, and aborts the upstream request", async () => {
    const upstreamAborted = deferred();
    const upstreamStarted = deferred();
    upstream.handle((req) => {
      upstreamStarted.resolve();
      req.on("close", () => upstreamAborted.resolve());
      req.resume();
    });
    const { url } = await startSidecar(upstream.url, ["--max-body-size", "1KiB"]);
    const req = httpRequest(new URL("/mcp", url), {
      method: "POST",
      headers: { "transfer-encoding": "chunked" },
    });
    const responded = once(req, "response");
    req.write("y".repeat(800));
    // The upstream is already receiving this body when it grows over the limit.
    await upstreamStarted.promise;
    req.write("y".repeat(800));
    const [response] = (await responded) as [import("node:http").IncomingMessage];
    expect(response.statusCode).toBe(413);
    req.destroy();
    await upstreamAborted.promise;
  });

  it("accepts a body exactly at the limit", async () => {
    upstream.handle(async (req, res) => {
      res.end(String((await readBody(req)).length));
    });
    const { url } = await startSidecar(upstream.url, ["--max-body-size", "1KiB"]);
    const response = await send(new URL("/mcp", url), { method: "POST", body: "z".repeat(1024) });
    expect(response.text).toBe("1024");
  });

  it("answers 431 for more header lines than --max-header-count", async () => {
    const { url } = await startSidecar(upstream.url, ["--max-header-count", "10"]);
    const headers: string[] = [];
    for (let i = 0; i < 12; i++) headers.push(`x-h${i}`, "v");
    const response = await send(new URL("/mcp", url), { headers });
    expect(response.status).toBe(431);
    expect(response.json()).toMatchObject({ error: { code: "MCP_SIDECAR_TOO_MANY_HEADERS" } });
    expect(upstream.seen).toHaveLength(0);
  });

  it("answers 431 for headers over --max-header-size", async () => {
    const { url } = await startSidecar(upstream.url, ["--max-header-size", "2KiB"]);
    const text = await rawExchange(url, `GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(4096)}\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 431/);
  });
});

describe("upstream failures", () => {
  it("answers a JSON-RPC request with a 502 JSON-RPC error carrying its id when the upstream is down", async () => {
    const deadPort = await freePort();
    const { url } = await startSidecar(`http://127.0.0.1:${deadPort}`);
    const response = await send(new URL("/mcp", url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 42,
        method: "tools/call",
        params: { name: "echo", arguments: {} },
      }),
    });
    expect(response.status).toBe(502);
    expect(response.headers["content-type"]).toBe("application/json");
    expect(response.json()).toEqual({
      jsonrpc: "2.0",
      id: 42,
      error: {
        code: SIDECAR_JSONRPC_ERROR_CODE,
        message: expect.stringContaining("ECONNREFUSED"),
        data: { code: "MCP_SIDECAR_UPSTREAM_UNREACHABLE", status: 502 },
      },
    });
  });

  it("keeps a string id, and answers a notification or a GET with a plain JSON error", async () => {
    const deadPort = await freePort();
    const { url } = await startSidecar(`http://127.0.0.1:${deadPort}`);
    const stringId = await send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":"abc","method":"ping"}',
    });
    expect(stringId.json()).toMatchObject({ id: "abc", error: { data: { status: 502 } } });
    const notification = await send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    });
    expect(notification.json()).toMatchObject({
      error: { code: "MCP_SIDECAR_UPSTREAM_UNREACHABLE", status: 502 },
    });
    const get = await send(new URL("/mcp", url), { headers: { accept: "text/event-stream" } });
    expect(get.status).toBe(502);
  });

  it("waits for a slowly sent body before answering, so the id is known", async () => {
    const deadPort = await freePort();
    const { url } = await startSidecar(`http://127.0.0.1:${deadPort}`);
    const req = httpRequest(new URL("/mcp", url), {
      method: "POST",
      headers: { "transfer-encoding": "chunked" },
    });
    const responded = once(req, "response");
    req.write('{"jsonrpc":"2.0",');
    await new Promise((resolve) => setImmediate(resolve));
    req.end('"id":99,"method":"tools/list"}');
    const [response] = (await responded) as [import("node:http").IncomingMessage];
    expect(response.statusCode).toBe(502);
    expect(JSON.parse((await readBody(response)).toString())).toMatchObject({ id: 99 });
  });

  it("quotes the id of a body that completes after the upstream failed (the error answer waits for it)", async () => {
    // The upstream takes the request head and resets the connection before the body is complete.
    const upstreamReset = deferred();
    upstream.handle((req) => {
      req.socket.destroy();
      upstreamReset.resolve();
    });
    const { url } = await startSidecar(upstream.url);
    const req = httpRequest(new URL("/mcp", url), {
      method: "POST",
      headers: { "transfer-encoding": "chunked", "content-type": "application/json" },
    });
    const responded = once(req, "response");
    let answeredEarly = false;
    void responded.then(() => {
      answeredEarly = true;
    });
    req.write('{"jsonrpc":"2.0",');
    await upstreamReset.promise;
    // The rest of the body comes well after the reset. The pause is not what makes this pass (the
    // sidecar waits up to a second for the body); it gives an answer that did not wait the time to
    // arrive first, and so to fail the test.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answeredEarly).toBe(false);
    req.end('"id":77,"method":"tools/list"}');
    const [response] = (await responded) as [import("node:http").IncomingMessage];
    expect(response.statusCode).toBe(502);
    expect(JSON.parse((await readBody(response)).toString())).toMatchObject({
      id: 77,
      error: { data: { code: "MCP_SIDECAR_UPSTREAM_UNREACHABLE" } },
    });
  });

  it("turns /ready 503 at once when a forwarded request finds the upstream refusing connections", async () => {
    const { server, url: upstreamUrl } = await listenHttp(answerJsonRpc);
    const { url } = await startSidecar(upstreamUrl, ["--ready-cache", "1h"]);
    expect((await send(new URL("/ready", url))).status).toBe(200);
    await closeHttp(server);
    // The cached 200 would last an hour; the refused connection is news readiness must not wait for.
    const refused = await send(new URL("/mcp", url), { method: "POST", body: "{}" });
    expect(refused.status).toBe(502);
    const ready = await send(new URL("/ready", url));
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ reasons: [expect.stringContaining("connection refused")] });
  });

  it("answers 504 when the upstream does not start its response within --upstream-headers-timeout", async () => {
    upstream.handle((req) => {
      req.resume();
    });
    const { url } = await startSidecar(upstream.url, ["--upstream-headers-timeout", "200ms"]);
    const response = await send(new URL("/mcp", url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":5,"method":"tools/call"}',
    });
    expect(response.status).toBe(504);
    expect(response.json()).toMatchObject({
      id: 5,
      error: { data: { code: "MCP_SIDECAR_UPSTREAM_HEADERS_TIMEOUT" } },
    });
  });

  it("does not turn an upstream reset mid-response into a clean end", async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: partial\n\n", () => res.destroy());
    });
    const { url } = await startSidecar(upstream.url);
    const stream = await openStream(new URL("/mcp", url));
    await expect(stream.ended).rejects.toThrow();
  });
});

describe("health and readiness", () => {
  it("/health answers while the process runs, with state", async () => {
    const { url } = await startSidecar(upstream.url);
    const response = await send(new URL("/health", url));
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({
      status: "ok",
      state: "serving",
      uptimeSeconds: expect.any(Number),
    });
    expect(response.headers["cache-control"]).toBe("no-store");
  });

  it("answers only GET and HEAD on its own paths, and its paths are configurable", async () => {
    const { url } = await startSidecar(upstream.url, ["--health-path", "/livez", "--ready-path", "/readyz"]);
    expect((await send(new URL("/livez", url), { method: "POST" })).status).toBe(405);
    expect((await send(new URL("/livez", url), { method: "HEAD" })).status).toBe(200);
    expect((await send(new URL("/livez", url))).status).toBe(200);
    // /health is now an ordinary path: forwarded.
    await send(new URL("/health", url));
    expect(upstream.seen.at(-1)?.url).toBe("/health");
  });

  it("flips /ready with the upstream: 200 when it answers JSON-RPC, 503 with a reason when it stops", async () => {
    const port = await freePort();
    const { url } = await startSidecar(`http://127.0.0.1:${port}`, ["--ready-cache", "0"]);
    const down = await send(new URL("/ready", url));
    expect(down.status).toBe(503);
    expect(down.json()).toMatchObject({
      status: "not_ready",
      reasons: [expect.stringContaining("connection refused")],
    });

    const { server } = await listenHttp(answerJsonRpc);
    await closeHttp(server);
    const up = (await import("node:http")).createServer(answerJsonRpc);
    up.listen(port, "127.0.0.1");
    await once(up, "listening");
    const ready = await send(new URL("/ready", url));
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({
      status: "ready",
      state: "serving",
      checks: [{ name: "upstream", ok: true }],
    });

    up.closeAllConnections();
    await new Promise((resolve) => up.close(resolve));
    const again = await send(new URL("/ready", url));
    expect(again.status).toBe(503);
  });

  it("does not count a non-MCP answer as ready", async () => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>welcome</html>");
    });
    const { url } = await startSidecar(upstream.url, ["--ready-cache", "0"]);
    const response = await send(new URL("/ready", url));
    expect(response.status).toBe(503);
    expect(response.json()).toMatchObject({
      reasons: [expect.stringContaining("without a JSON-RPC message")],
    });
  });

  it("counts a JSON-RPC error from a session server (400, no session) as up, and reads SSE answers", async () => {
    upstream.handle((req, res) => {
      req.resume();
      if (req.method !== "POST") return res.end();
      res.writeHead(400, { "content-type": "application/json" });
      res.end(
        '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}',
      );
    });
    const { url } = await startSidecar(upstream.url, ["--ready-cache", "0"]);
    expect((await send(new URL("/ready", url))).status).toBe(200);
    upstream.handle((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end('event: message\ndata: {"jsonrpc":"2.0","id":"mcp-sidecar-ready","result":{}}\n\n');
    });
    expect((await send(new URL("/ready", url))).status).toBe(200);
  });

  it("supports an http probe (2xx) and a tcp probe", async () => {
    upstream.handle((req, res) => {
      res.writeHead(req.url === "/healthz" ? 204 : 500);
      res.end();
    });
    const http = await startSidecar(upstream.url, [
      "--ready-probe",
      "http",
      "--ready-probe-path",
      "/healthz",
    ]);
    expect((await send(new URL("/ready", http.url))).status).toBe(200);
    const bad = await startSidecar(upstream.url, ["--ready-probe", "http", "--ready-probe-path", "/other"]);
    expect((await send(new URL("/ready", bad.url))).json()).toMatchObject({
      reasons: ["upstream: GET /other answered 500"],
    });
    const tcp = await startSidecar(upstream.url, ["--ready-probe", "tcp"]);
    expect((await send(new URL("/ready", tcp.url))).status).toBe(200);
  });

  it("caches the probe so polling does not load the upstream", async () => {
    let probes = 0;
    upstream.handle((req, res) => {
      probes++;
      answerJsonRpc(req, res);
    });
    const { url } = await startSidecar(upstream.url, ["--ready-cache", "1h"]);
    for (let i = 0; i < 10; i++) expect((await send(new URL("/ready", url))).status).toBe(200);
    expect(probes).toBe(1);
  });
});

describe("request logs", () => {
  it("writes one JSON line per request with the MCP method, tool and a hashed session id", async () => {
    upstream.handle(async (req, res) => {
      await readBody(req);
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    const { url, logs } = await startSidecar(upstream.url);
    await send(new URL("/mcp", url), {
      method: "POST",
      headers: { "mcp-session-id": "secret-session-id-value", "content-type": "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "echo", arguments: {} },
      }),
    });
    await expect.poll(() => logs.filter((l) => l.msg === "request")).toHaveLength(1);
    const line = logs.find((l) => l.msg === "request");
    expect(line).toMatchObject({
      level: "info",
      method: "POST",
      path: "/mcp",
      status: 200,
      mcpMethod: "tools/call",
      tool: "echo",
      outcome: "completed",
      session: expect.stringMatching(/^[0-9a-f]{12}$/),
      reqId: expect.any(String),
      durationMs: expect.any(Number),
    });
    expect(JSON.stringify(logs)).not.toContain("secret-session-id-value");
  });
});
