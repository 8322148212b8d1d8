// What a stdio session reads of the JSON-RPC messages it relays: which are requests and which are
// answers, a request id as a map key, and how an answer came out (for the call's metrics).

import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";
import type { Answer } from "../../protocol/outcome.ts";

/** A map key for a JSON-RPC id: 1 and "1" are different requests. */
export const requestKey = (id: RequestId) => `${typeof id}:${String(id)}`;

export function isRequest(
  m: JSONRPCMessage,
): m is JSONRPCMessage & { id: RequestId; method: string; params?: unknown } {
  return "method" in m && "id" in m;
}

export function isResponse(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } {
  return ("result" in m || "error" in m) && "id" in m;
}

export function answerOf(message: JSONRPCMessage): Answer {
  if ("error" in message) return "error";
  const result = (message as { result?: { isError?: unknown } }).result;
  return result?.isError === true ? "tool_error" : "result";
}
