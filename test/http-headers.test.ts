import { describe, expect, it } from "vitest";
import { clientResponseHeaders, prepareUpstreamRequest } from "../proxy/http/headers.ts";

const forwarded = { remoteAddress: "10.0.0.9", proto: "http" };

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe("prepareUpstreamRequest", () => {
  it("keeps MCP headers byte for byte, replaces Host, drops hop-by-hop, adds X-Forwarded-*", () => {
    const raw = [
      "Host",
      "public.example:8080",
      "Mcp-Session-Id",
      "abc-123",
      "MCP-Protocol-Version",
      "2025-11-25",
      "Last-Event-ID",
      "ev-9",
      "Mcp-Method",
      "tools/call",
      "Mcp-Name",
      "=?base64?ZWNobw==?=",
      "Accept",
      "application/json, text/event-stream",
      "Content-Type",
      "application/json",
      "Authorization",
      "Bearer t",
      "Connection",
      "keep-alive, X-Hop",
      "X-Hop",
      "1",
      "Keep-Alive",
      "timeout=5",
      "Transfer-Encoding",
      "chunked",
      "TE",
      "trailers",
      "Upgrade",
      "h2c",
      "Proxy-Authorization",
      "Basic x",
    ];
    const { headers, info } = prepareUpstreamRequest(raw, "127.0.0.1:3000", forwarded);
    expect(pairs(headers)).toEqual([
      ["host", "127.0.0.1:3000"],
      ["Mcp-Session-Id", "abc-123"],
      ["MCP-Protocol-Version", "2025-11-25"],
      ["Last-Event-ID", "ev-9"],
      ["Mcp-Method", "tools/call"],
      ["Mcp-Name", "=?base64?ZWNobw==?="],
      ["Accept", "application/json, text/event-stream"],
      ["Content-Type", "application/json"],
      ["Authorization", "Bearer t"],
      ["x-forwarded-for", "10.0.0.9"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "public.example:8080"],
    ]);
    expect(info).toMatchObject({
      sessionId: "abc-123",
      mcpMethod: "tools/call",
      chunked: true,
      contentType: "application/json",
    });
  });

  it("appends to X-Forwarded-For and keeps an earlier proxy's Proto and Host", () => {
    const raw = [
      "X-Forwarded-For",
      "203.0.113.7",
      "X-Forwarded-Proto",
      "https",
      "X-Forwarded-Host",
      "mcp.example.com",
    ];
    const { headers } = prepareUpstreamRequest(raw, "127.0.0.1:3000", forwarded);
    expect(pairs(headers)).toEqual([
      ["host", "127.0.0.1:3000"],
      ["X-Forwarded-Proto", "https"],
      ["X-Forwarded-Host", "mcp.example.com"],
      ["x-forwarded-for", "203.0.113.7, 10.0.0.9"],
    ]);
  });

  it("keeps duplicate headers in order", () => {
    const raw = ["X-Multi", "a", "X-Multi", "b"];
    const { headers } = prepareUpstreamRequest(raw, "u:1", forwarded);
    expect(pairs(headers).filter(([name]) => name === "X-Multi")).toEqual([
      ["X-Multi", "a"],
      ["X-Multi", "b"],
    ]);
  });

  it("drops every header Connection names, special ones included, and every Proxy-* and Proxy", () => {
    const raw = [
      "Connection",
      "close, X-Request-Id, Mcp-Session-Id, Accept, X-Forwarded-Proto, Host",
      "X-Request-Id",
      "r1",
      "Mcp-Session-Id",
      "s1",
      "Accept",
      "text/event-stream",
      "X-Forwarded-Proto",
      "https",
      "Proxy",
      "http://evil:1",
      "Proxy-Foo",
      "bar",
      "Host",
      "client.example",
      "X-Kept",
      "yes",
    ];
    const { headers } = prepareUpstreamRequest(raw, "u:1", forwarded);
    expect(pairs(headers)).toEqual([
      ["host", "u:1"],
      ["X-Kept", "yes"],
      ["x-forwarded-for", "10.0.0.9"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "client.example"],
    ]);
  });

  it("drops the names the sidecar owns (its auth header, injected headers)", () => {
    const raw = ["Authorization", "Bearer k", "X-Api-Key", "spoof", "X-Other", "1"];
    const { headers, info } = prepareUpstreamRequest(
      raw,
      "u:1",
      forwarded,
      new Set(["authorization", "x-api-key"]),
    );
    expect(pairs(headers).map(([name]) => name)).toEqual([
      "host",
      "X-Other",
      "x-forwarded-for",
      "x-forwarded-proto",
    ]);
    expect(info.authorization).toBe("Bearer k");
  });

  it("picks up the client's request id", () => {
    expect(prepareUpstreamRequest(["X-Request-Id", "r-1"], "u:1", forwarded).info.requestId).toBe("r-1");
  });
});

describe("clientResponseHeaders", () => {
  it("drops hop-by-hop headers, keeps the rest, and recognises event streams", () => {
    const raw = [
      "Content-Type",
      "text/event-stream; charset=utf-8",
      "Mcp-Session-Id",
      "s1",
      "Transfer-Encoding",
      "chunked",
      "Connection",
      "keep-alive",
      "Keep-Alive",
      "timeout=5",
      "Cache-Control",
      "no-cache, no-transform",
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
    ].map((value) => Buffer.from(value, "latin1"));
    const summary = clientResponseHeaders(raw);
    expect(summary.eventStream).toBe(true);
    expect(pairs(summary.headers)).toEqual([
      ["Content-Type", "text/event-stream; charset=utf-8"],
      ["Mcp-Session-Id", "s1"],
      ["Cache-Control", "no-cache, no-transform"],
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
    ]);
  });

  it("is not an event stream for JSON", () => {
    expect(clientResponseHeaders(["content-type", "application/json"]).eventStream).toBe(false);
  });
});
