// How the stdio upstream reads a request: its whole body (a child takes JSON-RPC messages, not
// streams), and what it asks for: a new session (an initialize, or a legacy HTTP+SSE stream) or the
// legacy session its query names.

import type { IncomingMessage } from "node:http";

export { readWhole } from "../../http/body-prefix.ts";

/** The session a legacy HTTP+SSE POST names in its query (`?sessionId=`, as the endpoint event said). */
export function legacySessionIdOf(target: string | undefined): string | undefined {
  if (target === undefined || !target.includes("sessionId=")) return undefined;
  return new URL(target, "http://sidecar.invalid").searchParams.get("sessionId") ?? undefined;
}

/**
 * A GET that opens a legacy HTTP+SSE session: an event stream asked for with no session. A
 * Streamable HTTP client sends MCP-Protocol-Version (2025-06-18 on) on every request after its
 * initialize, and its GET without a session (its stream reconnecting after a DELETE, when the SDK
 * client has dropped the id) gets the SDK's 400, not a new session and child; a 2024-11-05 client
 * never sends that header.
 */
export function isLegacyStreamRequest(req: IncomingMessage, accept: string | undefined): boolean {
  return (
    req.method === "GET" &&
    accept?.includes("text/event-stream") === true &&
    req.headers["mcp-protocol-version"] === undefined
  );
}

export function isInitialize(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some(
    (m) => typeof m === "object" && m !== null && (m as { method?: unknown }).method === "initialize",
  );
}

/** The protocol revisions that have sessions (an initialize): anything newer is stateless. */
const SESSION_REVISIONS = new Set(["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]);

/**
 * A 2026-07-28 (or later) request: no session, and a protocol version on the request itself
 * (every such POST carries MCP-Protocol-Version). A 2025-era client sends the header only after
 * its initialize, with a session.
 */
export function isStatelessRequest(req: IncomingMessage): boolean {
  const version = req.headers["mcp-protocol-version"];
  return typeof version === "string" && !SESSION_REVISIONS.has(version);
}
