// Which of a stdio session's POSTs the sidecar answers itself, and that those never reach the MCP
// SDK's transport (the CPU it costs is why: answer-streams.ts). The session runs over a real HTTP
// server with the real SDK; its child is the ChildLink interface, answered by the test.

import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { headersPassSdkChecks, plainRequestOf } from "../proxy/upstream/stdio/answer-streams.ts";
import { loadStdioSdk, type StdioSdk } from "../proxy/upstream/stdio/sdk.ts";
import type { ChildLink } from "../proxy/upstream/stdio/session.ts";
import { initializeBody, rawExchange, send } from "./helpers/client.ts";
import { closeHttp, listenHttp } from "./helpers/net.ts";
import { sessionOver } from "./helpers/stdio-session.ts";

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe("plainRequestOf", () => {
  it("takes one request as the SDK's schema would accept it unchanged", () => {
    for (const body of [
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: {} } },
      { jsonrpc: "2.0", id: "a", method: "tools/list" },
      { jsonrpc: "2.0", id: 0, method: "x", params: { _meta: { progressToken: "t" } } },
      { jsonrpc: "2.0", id: 2, method: "x", params: { _meta: { progressToken: 7 } } },
      { jsonrpc: "2.0", id: 3, method: "x", params: { _meta: {} } },
      {
        jsonrpc: "2.0",
        id: 4,
        method: "x",
        params: { _meta: { "example.com/trace": "t", progressToken: "t" } },
      },
    ])
      expect(plainRequestOf(body)).toBe(body);
  });

  it("leaves the rest to the SDK: initialize, batches, notifications, answers, odd ids, keys, params, a _meta the SDK validates", () => {
    for (const body of [
      { jsonrpc: "2.0", id: 1, method: "initialize", params: {} },
      [{ jsonrpc: "2.0", id: 1, method: "tools/list" }],
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", id: 1, result: {} },
      { jsonrpc: "1.0", id: 1, method: "tools/list" },
      { jsonrpc: "2.0", id: 1.5, method: "tools/list" },
      { jsonrpc: "2.0", id: null, method: "tools/list" },
      { jsonrpc: "2.0", id: 2 ** 53 + 2, method: "tools/list" },
      { jsonrpc: "2.0", id: 1e21, method: "tools/list" },
      { jsonrpc: "2.0", id: 1, method: "x", params: { _meta: { progressToken: 1e21 } } },
      { jsonrpc: "2.0", id: 1, method: 5 },
      { jsonrpc: "2.0", id: 1, method: "tools/list", extra: 1 },
      { jsonrpc: "2.0", id: 1, method: "tools/list", params: [] },
      { jsonrpc: "2.0", id: 1, method: "tools/list", params: null },
      { jsonrpc: "2.0", id: 1, method: "x", params: { _meta: [] } },
      { jsonrpc: "2.0", id: 1, method: "x", params: { _meta: { progressToken: 1.5 } } },
      { jsonrpc: "2.0", id: 1, method: "x", params: { _meta: { progressToken: null } } },
      {
        jsonrpc: "2.0",
        id: 1,
        method: "x",
        params: { _meta: { "io.modelcontextprotocol/related-task": { taskId: "t" } } },
      },
      "not an object",
      null,
    ])
      expect(plainRequestOf(body), JSON.stringify(body)).toBeUndefined();
  });
});

describe("headersPassSdkChecks (real requests, parsed by node:http)", () => {
  const sdkVersions = ["2025-11-25", "2025-06-18"];
  const good = [
    "Accept: application/json, text/event-stream",
    "Content-Type: application/json",
    "Mcp-Session-Id: s1",
  ];
  /** What the check says of a POST with these header lines. */
  async function check(lines: readonly string[]): Promise<string> {
    const { server, url } = await listenHttp((req, res) => {
      res.end(String(headersPassSdkChecks(req, "s1", sdkVersions)));
    });
    closers.push(() => closeHttp(server));
    const head = [
      "POST /mcp HTTP/1.1",
      `Host: ${url.host}`,
      "Connection: close",
      "Content-Length: 0",
      ...lines,
    ];
    const answer = await rawExchange(url, `${head.join("\r\n")}\r\n\r\n`);
    return answer.split("\r\n\r\n")[1] ?? "";
  }

  it("passes what the SDK's transport passes", async () => {
    expect(await check(good)).toBe("true");
    expect(await check([...good, "MCP-Protocol-Version: 2025-06-18"])).toBe("true");
    expect(await check(["Accept: application/json", "Accept: text/event-stream", ...good.slice(1)])).toBe(
      "true",
    );
  });

  it("leaves the rest to the SDK: Accept without both, another or a repeated body type, another session, an unknown revision", async () => {
    const refused = [
      ["Accept: application/json", ...good.slice(1)],
      ["Accept: text/event-stream", ...good.slice(1)],
      good.slice(1),
      [good[0], "Content-Type: text/plain", good[2]],
      // Node keeps the first of two Content-Types; the SDK sees both, and refuses them.
      [...good, "Content-Type: application/json"],
      // Parameters and cases the SDK parses for itself.
      [good[0], "Content-Type: application/json; a=b,c", good[2]],
      [good[0], good[2]],
      [good[0], good[1], "Mcp-Session-Id: s2"],
      [...good, "Mcp-Session-Id: s1"],
      [...good, "MCP-Protocol-Version: 2026-07-28"],
    ];
    for (const lines of refused) expect(await check(lines as string[]), lines.join(" | ")).toBe("false");
  });
});

describe("StdioSession's calls", () => {
  it("are answered past the SDK's transport; its initialize and batches go through it", async () => {
    const real = await loadStdioSdk();
    let sdkRequests = 0;
    class CountingTransport extends real.StreamableHTTPServerTransport {
      override handleRequest(
        ...args: Parameters<typeof real.StreamableHTTPServerTransport.prototype.handleRequest>
      ) {
        sdkRequests++;
        return super.handleRequest(...args);
      }
    }
    const sdk: StdioSdk = { ...real, StreamableHTTPServerTransport: CountingTransport };
    const sent: JSONRPCMessage[] = [];
    // The child answers every request at once with its method's name.
    const link: ChildLink = {
      send: (message) => {
        sent.push(message);
        if ("id" in message && "method" in message && message.method !== "hang")
          queueMicrotask(() =>
            link.onmessage?.({ jsonrpc: "2.0", id: message.id, result: { method: message.method } }),
          );
        return true;
      },
      onmessage: undefined,
      onexit: undefined,
      stop: async () => {},
    };
    const session = sessionOver(link, sdk, "session-1");
    closers.push(() => session.end("stopped"));
    const { server, url } = await listenHttp((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => void session.handle(req, res, JSON.parse(body)));
    });
    closers.push(() => closeHttp(server));
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-session-id": "session-1",
    };
    const post = (body: unknown) => send(url, { method: "POST", headers, body: JSON.stringify(body) });

    expect((await send(url, { method: "POST", headers, body: initializeBody("t") })).status).toBe(200);
    expect(sdkRequests).toBe(1);
    const answer = await post({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    expect(answer.text).toBe(
      'event: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"method":"tools/list"}}\n\n',
    );
    expect(answer.headers["mcp-session-id"]).toBe("session-1");
    expect(sdkRequests).toBe(1);
    expect(sent.at(-1)).toEqual({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    const batch = await post([{ jsonrpc: "2.0", id: 3, method: "tools/list" }]);
    expect(batch.text).toContain('"id":3');
    expect(sdkRequests).toBe(2);
    // An id still in flight, sent again: the client's mistake, which the SDK handles as it does.
    const first = fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 4, method: "hang" }),
    });
    await (await first).body?.cancel();
    expect(sdkRequests).toBe(2);
    const again = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 4, method: "tools/list" }),
    });
    await again.body?.cancel();
    expect(sdkRequests).toBe(3);
  });
});
