// Transparency with real MCP peers nobody here wrote: the same scenario runs directly against the
// server and through the sidecar, and the results must be the same.

import { execFile } from "node:child_process";
import type { Server } from "node:http";
import { promisify } from "node:util";
import {
  Client as Sdk2Client,
  StreamableHTTPClientTransport as Sdk2Transport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { initializeBody, send } from "./helpers/client.ts";
import { closeHttp, freePort } from "./helpers/net.ts";
import { jsonLine, ROOT, startProcess, startReferenceServer, stopAllProcesses } from "./helpers/processes.ts";
import { startSidecar, stopAllSidecars } from "./helpers/sidecar.ts";
import { handler as sdk2Handler, startSdk2Server } from "./peers/sdk2-server.ts";

const run = promisify(execFile);

afterAll(async () => {
  await stopAllSidecars();
  await stopAllProcesses();
});

/** Swaps the origin of a URL for the sidecar's, keeping path and query. */
function via(sidecar: URL, target: URL): URL {
  return new URL(`${target.pathname}${target.search}`, sidecar);
}

type TextContent = { type: string; text?: string }[];

describe("reference server (SDK 1.x, 2025-11-25 sessions)", () => {
  let direct: URL;
  let proxied: URL;
  let logs: Record<string, unknown>[];

  beforeAll(async () => {
    const server = await startReferenceServer();
    direct = server.url;
    const sidecar = await startSidecar(server.origin);
    proxied = via(sidecar.url, direct);
    logs = sidecar.logs;
  });

  async function scenario(url: URL) {
    const client = new Client({ name: "peer-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(url);
    await client.connect(transport);
    const sessionId = transport.sessionId;
    const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
    const echo = await client.callTool({ name: "echo", arguments: { message: "héllo through" } });
    const progress: number[] = [];
    const slow = await client.callTool({ name: "slow", arguments: { ms: 300, steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    // A notification that belongs to no request travels on the standalone GET stream, which the
    // client opens after initialization: keep asking until it has arrived there.
    const notes = new Set<string>();
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      notes.add(String(n.params.data));
    });
    await vi.waitFor(
      async () => {
        await client.callTool({ name: "broadcast", arguments: { message: "on-the-get-stream" } });
        expect(notes.has("on-the-get-stream")).toBe(true);
      },
      { timeout: 20_000, interval: 50 },
    );
    await transport.terminateSession();
    const afterDelete = await send(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sessionId ?? "",
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    await client.close();
    return {
      sessionIdIssued: typeof sessionId === "string" && sessionId.length > 0,
      tools,
      echo: echo.content,
      slow: slow.content,
      progress,
      notes: [...notes],
      afterDeleteStatus: afterDelete.status,
    };
  }

  it("gives the same results directly and through the sidecar", async () => {
    const expected = await scenario(direct);
    expect(expected).toEqual({
      sessionIdIssued: true,
      tools: ["broadcast", "echo", "secret_fingerprint", "slow"],
      echo: [{ type: "text", text: "héllo through" }],
      slow: [{ type: "text", text: "waited 300 ms" }],
      progress: [1, 2, 3],
      notes: ["on-the-get-stream"],
      afterDeleteStatus: 404,
    });
    expect(await scenario(proxied)).toEqual(expected);
    const lines = logs.filter((line) => line.msg === "request");
    // The session's standalone GET stream and its DELETE went through the sidecar too.
    expect(lines.some((line) => line.method === "GET" && line.kind === "endless")).toBe(true);
    expect(lines.some((line) => line.method === "DELETE" && line.status === 200)).toBe(true);
    expect(lines.some((line) => line.tool === "slow" && line.mcpMethod === "tools/call")).toBe(true);
  });

  it("passes the server's own rejections through: bad Accept 406, bad Content-Type 415, foreign Origin 403, unknown session 404, bad version 400", async () => {
    const init = initializeBody("x");
    const opened = await send(direct, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: init,
    });
    const session = String(opened.headers["mcp-session-id"]);
    const list = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    const inSession = {
      accept: "application/json, text/event-stream",
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-11-25",
    };
    const cases: { headers: Record<string, string>; body: string }[] = [
      { headers: { "content-type": "application/json", accept: "application/json" }, body: init },
      { headers: { ...inSession, "content-type": "text/plain" }, body: list },
      {
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          origin: "http://evil.example",
        },
        body: init,
      },
      {
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": "nope",
        },
        body: init,
      },
      {
        headers: { ...inSession, "content-type": "application/json", "mcp-protocol-version": "1999-01-01" },
        body: list,
      },
    ];
    for (const testCase of cases) {
      const a = await send(direct, { method: "POST", ...testCase });
      const b = await send(proxied, { method: "POST", ...testCase });
      expect([b.status, b.text]).toEqual([a.status, a.text]);
    }
    const statuses = await Promise.all(
      cases.map((c) => send(proxied, { method: "POST", ...c }).then((r) => r.status)),
    );
    expect(statuses).toEqual([406, 415, 403, 404, 400]);
  });

  it("passes a GET to the stateless server's 405 and the SDK's 409 for a second GET stream", async () => {
    const client = new Client({ name: "peer-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(proxied);
    await client.connect(transport);
    const headers = {
      accept: "text/event-stream",
      "mcp-session-id": transport.sessionId ?? "",
      "mcp-protocol-version": "2025-11-25",
    };
    // The client's own GET stream is open (or opening); a second one gets 409 from the SDK.
    await vi.waitFor(
      async () => {
        const second = await send(proxied, { headers });
        expect(second.status).toBe(409);
      },
      { timeout: 20_000, interval: 50 },
    );
    await client.close();
  });
});

describe("@modelcontextprotocol/server-everything 2026.8.31", () => {
  describe("streamableHttp", () => {
    let direct: URL;
    let proxied: URL;

    beforeAll(async () => {
      const port = await freePort();
      const proc = startProcess(
        process.execPath,
        [`${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`, "streamableHttp"],
        {
          env: { PORT: String(port) },
        },
      );
      await proc.waitForLine((line) => line.includes("listening on port"), "server-everything listening");
      direct = new URL(`http://127.0.0.1:${port}/mcp`);
      const sidecar = await startSidecar(direct.origin);
      proxied = via(sidecar.url, direct);
    });

    async function scenario(url: URL) {
      const client = new Client({ name: "peer-test", version: "1.0.0" });
      const transport = new StreamableHTTPClientTransport(url);
      await client.connect(transport);
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      const echo = await client.callTool({ name: "echo", arguments: { message: "everything" } });
      const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 40 } });
      const progress: number[] = [];
      const longRun = await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 4 } },
        undefined,
        {
          onprogress: (p) => progress.push(p.progress),
        },
      );
      await transport.terminateSession();
      await client.close();
      return {
        hasTools: ["echo", "get-sum", "trigger-long-running-operation"].every((name) => tools.includes(name)),
        echo: echo.content,
        sum: sum.content,
        longRun: (longRun.content as TextContent)[0]?.text?.includes("completed") ?? false,
        progress,
      };
    }

    it("gives the same results directly and through the sidecar", async () => {
      const expected = await scenario(direct);
      expect(expected.hasTools).toBe(true);
      expect(expected.progress).toEqual([1, 2, 3, 4]);
      expect(expected.longRun).toBe(true);
      expect(await scenario(proxied)).toEqual(expected);
    });

    it("passes its 400 for an unknown session through unchanged", async () => {
      const headers = {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": "unknown",
      };
      const body = JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list" });
      const a = await send(direct, { method: "POST", headers, body });
      const b = await send(proxied, { method: "POST", headers, body });
      expect(b.status).toBe(400);
      expect([b.status, b.text]).toEqual([a.status, a.text]);
    });
  });

  describe("legacy sse", () => {
    let directSse: URL;
    let proxiedSse: URL;

    beforeAll(async () => {
      const port = await freePort();
      const proc = startProcess(
        process.execPath,
        [`${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js`, "sse"],
        {
          env: { PORT: String(port) },
        },
      );
      await proc.waitForLine((line) => line.includes("running on port"), "server-everything sse listening");
      directSse = new URL(`http://127.0.0.1:${port}/sse`);
      const sidecar = await startSidecar(directSse.origin);
      proxiedSse = via(sidecar.url, directSse);
    });

    async function scenario(url: URL) {
      const client = new Client({ name: "peer-test", version: "1.0.0" });
      await client.connect(new SSEClientTransport(url));
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      const echo = await client.callTool({ name: "echo", arguments: { message: "legacy" } });
      const progress: number[] = [];
      await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 } },
        undefined,
        {
          onprogress: (p) => progress.push(p.progress),
        },
      );
      await client.close();
      // The SDK's SSE client may handle the final result before the last progress notification,
      // directly as well as proxied: count that progress arrived, not how much.
      return { hasEcho: tools.includes("echo"), echo: echo.content, progressArrived: progress.length > 0 };
    }

    it("gives the same results directly and through the sidecar (GET stream + POSTs to the endpoint event's URL)", async () => {
      const expected = await scenario(directSse);
      expect(expected).toEqual({
        hasEcho: true,
        echo: [{ type: "text", text: "Echo: legacy" }],
        progressArrived: true,
      });
      expect(await scenario(proxiedSse)).toEqual(expected);
    });
  });
});

describe("SDK 2.x pair in 2026-07-28 mode (stateless, Mcp-Method headers, subscriptions/listen)", () => {
  let server: Server;
  let direct: URL;
  let proxied: URL;
  let logs: Record<string, unknown>[];

  beforeAll(async () => {
    const started = await startSdk2Server();
    server = started.server;
    direct = started.url;
    const sidecar = await startSidecar(direct.origin);
    proxied = via(sidecar.url, direct);
    logs = sidecar.logs;
  });
  afterAll(async () => {
    await closeHttp(server);
  });

  async function scenario(url: URL) {
    const client = new Sdk2Client(
      { name: "peer-test", version: "1.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    const changes: string[] = [];
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changes.push("tools/list_changed");
    });
    await client.connect(new Sdk2Transport(url));
    const version = client.getNegotiatedProtocolVersion();
    const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
    const echo = await client.callTool({ name: "echo", arguments: { message: "modern" } });
    const progress: number[] = [];
    const slow = await client.callTool(
      { name: "slow", arguments: { ms: 300, steps: 3 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    const subscription = await client.listen({ toolsListChanged: true });
    sdk2Handler.notify.toolsChanged();
    await vi.waitFor(() => expect(changes).toEqual(["tools/list_changed"]), { timeout: 20_000 });
    await subscription.close();
    await client.close();
    return { version, tools, echo: echo.content, slow: slow.content, progress, changes };
  }

  it("gives the same results directly and through the sidecar", async () => {
    const expected = await scenario(direct);
    expect(expected).toEqual({
      version: "2026-07-28",
      tools: ["echo", "slow"],
      echo: [{ type: "text", text: "modern" }],
      slow: [{ type: "text", text: "waited 300 ms" }],
      progress: [1, 2, 3],
      changes: ["tools/list_changed"],
    });
    expect(await scenario(proxied)).toEqual(expected);
    const lines = logs.filter((line) => line.msg === "request");
    expect(lines.some((line) => line.mcpMethod === "subscriptions/listen" && line.kind === "endless")).toBe(
      true,
    );
    expect(lines.some((line) => line.mcpMethod === "tools/call" && line.tool === "slow")).toBe(true);
  });

  it("passes the server's 400 HeaderMismatch through", async () => {
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
    };
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/list",
      params: {
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    });
    const a = await send(direct, { method: "POST", headers, body });
    const b = await send(proxied, { method: "POST", headers, body });
    expect(b.status).toBe(400);
    expect(b.json()).toMatchObject({ error: { code: -32020 } });
    expect([b.status, b.text]).toEqual([a.status, a.text]);
  });
});

describe("Inspector CLI (@modelcontextprotocol/inspector 2.12.0)", () => {
  it("lists and calls tools through the sidecar exactly as directly", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecar(server.origin);
    const inspector = `${ROOT}node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js`;
    const cli = async (url: URL, ...args: string[]) => {
      const { stdout } = await run(
        process.execPath,
        [inspector, "--cli", url.href, "--transport", "http", ...args],
        { cwd: ROOT },
      );
      return JSON.parse(stdout) as unknown;
    };
    const proxied = via(sidecar.url, server.url);
    const listDirect = await cli(server.url, "--method", "tools/list");
    const listProxied = await cli(proxied, "--method", "tools/list");
    expect(listProxied).toEqual(listDirect);
    expect((listProxied as { tools: { name: string }[] }).tools.map((tool) => tool.name)).toContain("slow");
    const call = ["--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=inspected"];
    expect(await cli(proxied, ...call)).toEqual(await cli(server.url, ...call));
    expect(await cli(proxied, ...call)).toEqual({ content: [{ type: "text", text: "inspected" }] });
    expect(jsonLine(server.proc.lines[0] ?? "")?.msg).toBe("listening");
  });
});
