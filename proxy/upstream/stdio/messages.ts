// What a stdio session reads of the JSON-RPC messages it relays: which are requests and which are
// answers, a request id as a map key, and how an answer came out (for the call's metrics).

import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";
import { type Answer, answerOfMessage } from "../../protocol/outcome.ts";

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

/** How a child's answer came out (an answer always is one). */
export function answerOf(message: JSONRPCMessage): Answer {
  return answerOfMessage(message) ?? "result";
}
