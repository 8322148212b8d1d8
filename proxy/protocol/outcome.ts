// What a forwarded exchange means in MCP terms, as pure functions of what the sidecar saw: which kind
// of exchange it is (a call that ends by itself, or a stream that never does), which MCP method and
// tool it carries, and how the call ended. The transport (upstream/http/exchange.ts) records facts;
// these functions read them. Tested over edge values in test/outcome.test.ts.

import type { RequestHeadInfo } from "../http/headers.ts";
import { decodeMcpHeaderValue, type McpMessageInfo } from "./jsonrpc.ts";
import { sseEventData, sseEvents } from "./sse.ts";

/**
 * `call`: ends by itself and must be allowed to (tools/call above all).
 * `endless`: a stream that only ends when someone closes it: a standalone GET event stream
 * (2025-11-25), a legacy SSE GET, a 2026-07-28 `subscriptions/listen` POST.
 */
export type ExchangeKind = "call" | "endless";

/** How an exchange ended, as the transport saw it. */
export type ExchangeOutcome =
  | "completed"
  | "upstream_error"
  | "client_closed"
  | "body_too_large"
  | "unauthorized"
  | "closed_by_drain"
  | "cut";

/**
 * How an MCP request ended: a result, a result flagged `isError` (a tool that failed), a JSON-RPC
 * error, or no answer (transport error, cancelled).
 */
export type CallOutcome = "result" | "tool_error" | "jsonrpc_error" | "transport_error" | "cancelled";

/** The kinds of event stream forwarded, for metrics. */
export type StreamKind = "post_response" | "get_standalone" | "legacy_sse" | "listen";

/** What the JSON-RPC answer in a response is, when it can be read. */
export type Answer = "result" | "tool_error" | "error";

export function classifyExchange(method: string, head: RequestHeadInfo): ExchangeKind {
  if (method === "GET" && head.accept?.includes("text/event-stream")) return "endless";
  if (method === "POST" && head.mcpMethod === "subscriptions/listen") return "endless";
  return "call";
}

/** Which event stream a response is, from the request that opened it. */
export function streamKindOf(method: string, kind: ExchangeKind, head: RequestHeadInfo): StreamKind {
  if (method === "POST") return kind === "endless" ? "listen" : "post_response";
  // A 2025-11-25 standalone stream belongs to a session; a legacy SSE GET opens one.
  return head.sessionId !== undefined ? "get_standalone" : "legacy_sse";
}

export interface McpRequestInfo {
  /** `tools/call` etc.: the 2026 Mcp-Method header when sent, else the body's. */
  readonly method: string | undefined;
  /** The tool, prompt or resource: the 2026 Mcp-Name header when sent, else the body's. */
  readonly name: string | undefined;
  /** A JSON-RPC request (with an id), not a notification: only requests are counted as calls. */
  readonly isRequest: boolean;
}

const NO_MCP: McpRequestInfo = Object.freeze({ method: undefined, name: undefined, isRequest: false });

/**
 * The MCP method and name of an exchange. The 2026-07-28 headers exist so that intermediaries need
 * not parse bodies; without them the body (when it was kept) says. Without a body to read, a
 * header-only request counts as a request unless its method is a notification.
 */
export function mcpRequestOf(head: RequestHeadInfo, message: McpMessageInfo | undefined): McpRequestInfo {
  if (head.mcpMethod === undefined && message === undefined) return NO_MCP;
  const method = decodeMcpHeaderValue(head.mcpMethod) ?? message?.method;
  const name = decodeMcpHeaderValue(head.mcpName) ?? message?.name;
  const isRequest =
    message?.hasRequest ?? (head.mcpMethod !== undefined && !method?.startsWith("notifications/"));
  return { method, name, isRequest };
}

/**
 * The JSON-RPC answer in a kept response: for a JSON body the whole text, for an event stream its
 * last event that carries data (the response ends the stream; progress notifications come before
 * it). A batch is an error if any member is, a tool error if any result is flagged `isError`.
 */
export function answerOf(text: string, eventStream: boolean): Answer | undefined {
  let message: string | undefined = text;
  if (eventStream) {
    const events = sseEvents(text);
    message = undefined;
    for (let i = events.length - 1; i >= 0 && message === undefined; i--) {
      message = sseEventData(events[i] as string);
    }
  }
  if (message === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  let answer: "result" | "tool_error" | undefined;
  for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof item !== "object" || item === null) continue;
    const one = answerOfMessage(item);
    if (one === "error") return "error";
    if (one !== undefined) answer = answer === "tool_error" ? "tool_error" : one;
  }
  return answer;
}

/** How one JSON-RPC message answers: an error, a result flagged `isError`, a result; else not an answer. */
export function answerOfMessage(message: object): Answer | undefined {
  if ("error" in message) return "error";
  if (!("result" in message)) return undefined;
  return (message as { result?: { isError?: unknown } }).result?.isError === true ? "tool_error" : "result";
}

/**
 * How an MCP call ended. The transport's outcome decides when there was no complete answer;
 * otherwise the answer itself does (`readAnswer` is only asked then). An answer that cannot be read
 * (a large result, which is what grows) counts as a result unless the status says HTTP failed.
 */
export function callOutcomeOf(
  outcome: ExchangeOutcome,
  status: number,
  readAnswer: () => Answer | undefined,
): CallOutcome | undefined {
  switch (outcome) {
    case "client_closed":
    case "closed_by_drain":
      return "cancelled";
    case "upstream_error":
    case "cut":
    case "body_too_large":
      return "transport_error";
    case "unauthorized":
      return undefined;
    case "completed":
      break;
  }
  const answer = readAnswer();
  if (answer === "error") return "jsonrpc_error";
  if (answer !== undefined) return answer;
  // 202: accepted, its answer (if any) not in this response (a legacy POST's comes on its stream,
  // and only an upstream that saw it can say how it went); 204: nothing to answer.
  if (status === 202 || status === 204) return "result";
  return status >= 400 ? "transport_error" : "result";
}
