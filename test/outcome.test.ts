// What an exchange means in MCP terms, over edge values: the pure functions the transport's facts go
// through (protocol/outcome.ts, protocol/response-capture.ts) and the access log line of a summary.
import { describe, expect, it, vi } from "vitest";
import type { RequestHeadInfo } from "../proxy/http/headers.ts";
import { describeJsonRpc } from "../proxy/protocol/jsonrpc.ts";
import {
  answerOf,
  callOutcomeOf,
  classifyExchange,
  type ExchangeOutcome,
  mcpRequestOf,
  streamKindOf,
} from "../proxy/protocol/outcome.ts";
import { CAPTURE_LIMIT_BYTES, ResponseCapture } from "../proxy/protocol/response-capture.ts";
import { accessLogLine } from "../proxy/telemetry/access-log.ts";
import type { ExchangeSummary } from "../proxy/telemetry/exchange-summary.ts";

function head(fields: Partial<RequestHeadInfo> = {}): RequestHeadInfo {
  return {
    requestId: undefined,
    sessionId: undefined,
    mcpMethod: undefined,
    mcpName: undefined,
    accept: undefined,
    contentType: undefined,
    contentLength: undefined,
    chunked: false,
    authorization: undefined,
    ...fields,
  };
}

const call = (id: number | string, method: string, params?: unknown) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, ...(params ? { params } : {}) });
const sse = (...datas: string[]) => datas.map((data) => `event: message\ndata: ${data}\n\n`).join("");

describe("classifyExchange", () => {
  it.each([
    ["GET", { accept: "text/event-stream" }, "endless"],
    ["GET", { accept: "application/json, text/event-stream" }, "endless"],
    ["GET", { accept: "application/json" }, "call"],
    ["GET", {}, "call"],
    ["POST", { mcpMethod: "subscriptions/listen" }, "endless"],
    ["POST", { mcpMethod: "tools/call", accept: "text/event-stream" }, "call"],
    ["POST", {}, "call"],
    ["DELETE", { accept: "text/event-stream" }, "call"],
  ] as const)("%s %j is a %s", (method, fields, kind) => {
    expect(classifyExchange(method, head(fields))).toBe(kind);
  });
});

describe("streamKindOf", () => {
  it.each([
    ["POST", "call", {}, "post_response"],
    ["POST", "endless", {}, "listen"],
    ["GET", "endless", { sessionId: "s" }, "get_standalone"],
    ["GET", "endless", {}, "legacy_sse"],
  ] as const)("%s (%s, %j) opens a %s stream", (method, kind, fields, expected) => {
    expect(streamKindOf(method, kind, head(fields))).toBe(expected);
  });
});

describe("mcpRequestOf", () => {
  it("prefers the 2026 headers, decoding the base64 form, over the body", () => {
    const message = describeJsonRpc(call(1, "tools/list"));
    expect(mcpRequestOf(head({ mcpMethod: "tools/call", mcpName: "=?base64?w6ljaG8=?=" }), message)).toEqual({
      method: "tools/call",
      name: "écho",
      isRequest: true,
    });
  });

  it("reads the body when there are no headers: a request, a notification, a batch", () => {
    expect(mcpRequestOf(head(), describeJsonRpc(call(1, "tools/call", { name: "echo" })))).toEqual({
      method: "tools/call",
      name: "echo",
      isRequest: true,
    });
    expect(
      mcpRequestOf(head(), describeJsonRpc('{"jsonrpc":"2.0","method":"notifications/initialized"}')),
    ).toEqual({ method: "notifications/initialized", name: undefined, isRequest: false });
    const batch = describeJsonRpc(`[${call(1, "ping")},${call(2, "tools/list")}]`);
    expect(mcpRequestOf(head(), batch)).toMatchObject({ method: "ping", isRequest: true });
  });

  it("without a body, a header-only request is a request unless it names a notification", () => {
    expect(mcpRequestOf(head({ mcpMethod: "tools/call" }), undefined).isRequest).toBe(true);
    expect(mcpRequestOf(head({ mcpMethod: "notifications/cancelled" }), undefined).isRequest).toBe(false);
  });

  it("is nothing at all for a request that is not MCP", () => {
    expect(mcpRequestOf(head(), undefined)).toEqual({ method: undefined, name: undefined, isRequest: false });
  });
});

describe("answerOf", () => {
  it.each([
    ['{"jsonrpc":"2.0","id":1,"result":{}}', false, "result"],
    ['{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}', false, "tool_error"],
    ['{"jsonrpc":"2.0","id":1,"result":{"isError":"yes"}}', false, "result"],
    ['{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}', false, "error"],
    ['[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{}}]', false, "error"],
    [
      '[{"jsonrpc":"2.0","id":1,"result":{"isError":true}},{"jsonrpc":"2.0","id":2,"result":{}}]',
      false,
      "tool_error",
    ],
    ['{"jsonrpc":"2.0","method":"notifications/progress"}', false, undefined],
    ['[1, null, "x"]', false, undefined],
    ["not json", false, undefined],
    ["", false, undefined],
  ] as const)("JSON %s -> %s", (text, stream, answer) => {
    expect(answerOf(text, stream)).toBe(answer);
  });

  it("reads an event stream's last event with data: progress first, then the answer", () => {
    const progress = '{"jsonrpc":"2.0","method":"notifications/progress","params":{}}';
    expect(answerOf(sse(progress, '{"jsonrpc":"2.0","id":1,"result":{}}'), true)).toBe("result");
    expect(answerOf(sse(progress, '{"jsonrpc":"2.0","id":1,"error":{}}'), true)).toBe("error");
    // A keepalive comment or an event without data after the answer does not hide it.
    expect(answerOf(`${sse('{"jsonrpc":"2.0","id":1,"result":{}}')}: keepalive\n\nid: 9\n\n`, true)).toBe(
      "result",
    );
    // CR and CRLF line ends, and a data field split over two lines.
    expect(answerOf('data: {"jsonrpc":"2.0",\r\ndata: "id":1,"error":{}}\r\n\r\n', true)).toBe("error");
    expect(answerOf('data:{"jsonrpc":"2.0","id":1,"result":{}}\r\r', true)).toBe("result");
  });

  it("finds nothing in a stream of notifications only, or of comments", () => {
    expect(answerOf(sse('{"jsonrpc":"2.0","method":"notifications/message"}'), true)).toBeUndefined();
    expect(answerOf(": keepalive\n\n", true)).toBeUndefined();
  });
});

describe("callOutcomeOf", () => {
  const never = () => {
    throw new Error("the answer must not be read");
  };

  it.each([
    ["client_closed", "cancelled"],
    ["closed_by_drain", "cancelled"],
    ["upstream_error", "transport_error"],
    ["cut", "transport_error"],
    ["body_too_large", "transport_error"],
    ["unauthorized", undefined],
  ] as const)("%s decides by itself: %s, without reading the answer", (outcome, expected) => {
    expect(callOutcomeOf(outcome, 200, never)).toBe(expected);
  });

  it.each([202, 204])(
    "a completed %d is a result, unless an answer seen elsewhere says otherwise",
    (status) => {
      expect(callOutcomeOf("completed", status, () => undefined)).toBe("result");
      // A legacy POST's call, answered later on its session's stream.
      expect(callOutcomeOf("completed", status, () => "tool_error")).toBe("tool_error");
      expect(callOutcomeOf("completed", status, () => "error")).toBe("jsonrpc_error");
    },
  );

  it.each([
    [200, "result", "result"],
    [200, "tool_error", "tool_error"],
    [200, "error", "jsonrpc_error"],
    [400, "error", "jsonrpc_error"],
    [200, undefined, "result"],
    [399, undefined, "result"],
    [400, undefined, "transport_error"],
    [503, undefined, "transport_error"],
    [0, undefined, "result"],
  ] as const)("completed, status %d, answer %s -> %s", (status, answer, expected) => {
    const readAnswer = vi.fn(() => answer);
    expect(callOutcomeOf("completed" as ExchangeOutcome, status, readAnswer)).toBe(expected);
    expect(readAnswer).toHaveBeenCalledOnce();
  });
});

describe("ResponseCapture", () => {
  it("keeps a JSON body up to the limit, and nothing of one beyond it", () => {
    const small = new ResponseCapture(false, 64);
    small.keep(Buffer.from('{"jsonrpc":"2.0","id":1,'));
    small.keep(Buffer.from('"error":{"code":1}}'));
    expect(small.answer()).toBe("error");
    const large = new ResponseCapture(false, 16);
    large.keep(Buffer.from('{"jsonrpc":"2.0",'));
    large.keep(Buffer.from('"id":1,"error":{}}'));
    expect(large.answer()).toBeUndefined();
  });

  it("keeps the tail of an event stream, however long it runs, so its last event is read", () => {
    const capture = new ResponseCapture(true, 256);
    const progress = Buffer.from(sse('{"jsonrpc":"2.0","method":"notifications/progress","params":{}}'));
    for (let i = 0; i < 1000; i++) capture.keep(progress);
    capture.keep(Buffer.from(sse('{"jsonrpc":"2.0","id":7,"result":{"isError":true}}')));
    expect(capture.answer()).toBe("tool_error");
  });

  it("keeps an answer that arrives in pieces, and cannot read one larger than the limit", () => {
    const answer = sse('{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"a long message"}}');
    const pieces = [answer.slice(0, 10), answer.slice(10, 40), answer.slice(40)].map((p) => Buffer.from(p));
    const capture = new ResponseCapture(true, 128);
    capture.keep(Buffer.from(sse('{"jsonrpc":"2.0","method":"notifications/progress","params":{}}')));
    for (const piece of pieces) capture.keep(piece);
    expect(capture.answer()).toBe("error");
    const tooSmall = new ResponseCapture(true, 32);
    for (const piece of pieces) tooSmall.keep(piece);
    expect(tooSmall.answer()).toBeUndefined();
  });

  it("has nothing to say before any byte", () => {
    expect(new ResponseCapture(false).answer()).toBeUndefined();
    expect(new ResponseCapture(true).answer()).toBeUndefined();
    expect(CAPTURE_LIMIT_BYTES).toBe(64 * 1024);
  });
});

describe("accessLogLine", () => {
  const summary: ExchangeSummary = {
    id: "req-1",
    method: "POST",
    target: "/messages?sessionId=s3cr3t-session",
    route: "forward",
    status: 200,
    durationMs: 12.3456,
    outcome: "completed",
    kind: "call",
    mcpMethod: "tools/call",
    mcpName: "echo",
    isRequest: true,
    callOutcome: "result",
    sessionId: "s3cr3t-session-id",
    upstreamMs: 11.999,
    errorCode: undefined,
    keepalives: 0,
    streamKind: undefined,
    upstreamErrorKind: undefined,
  };

  it("names the call, hashes the session, drops the query, rounds the times", () => {
    const line = accessLogLine(summary);
    expect(line).toEqual({
      reqId: "req-1",
      method: "POST",
      path: "/messages",
      status: 200,
      durationMs: 12.35,
      outcome: "completed",
      kind: "call",
      mcpMethod: "tools/call",
      tool: "echo",
      mcpOutcome: "result",
      session: expect.stringMatching(/^[0-9a-f]{12}$/),
      upstreamMs: 12,
    });
    expect(JSON.stringify(line)).not.toContain("s3cr3t");
  });

  it("leaves out what the exchange did not have, and names a tool only for tools/call", () => {
    const line = accessLogLine({
      ...summary,
      target: "/mcp",
      mcpMethod: "resources/read",
      mcpName: "file:///x",
      sessionId: undefined,
      upstreamMs: undefined,
      callOutcome: undefined,
      errorCode: "MCP_SIDECAR_UPSTREAM_UNREACHABLE",
      keepalives: 3,
    });
    expect(line).not.toHaveProperty("tool");
    expect(line).not.toHaveProperty("session");
    expect(line).not.toHaveProperty("upstreamMs");
    expect(line).not.toHaveProperty("mcpOutcome");
    expect(line).toMatchObject({ error: "MCP_SIDECAR_UPSTREAM_UNREACHABLE", keepalives: 3 });
    const plain = accessLogLine({ ...summary, mcpMethod: undefined, mcpName: undefined });
    expect(plain).not.toHaveProperty("mcpMethod");
    expect(plain).not.toHaveProperty("mcpOutcome");
  });
});
