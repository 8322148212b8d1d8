// Re-creates an MCP session on the local upstream from a client's initialize params: what session
// continuity replays when a session's owner is gone. It speaks as the client did (2025-11-25
// Streamable HTTP, lifecycle §Initialization): `initialize`, then `notifications/initialized` with
// the new Mcp-Session-Id and the negotiated MCP-Protocol-Version.

import type { Dispatcher } from "undici";
import { sseEventData, sseEvents } from "../../protocol/sse.ts";

export interface OpenedSession {
  readonly sessionId: string;
  readonly protocolVersion: string | undefined;
}

export interface SessionOpenRequest {
  readonly path: string;
  readonly host: string;
  readonly params: Record<string, unknown>;
  /** Header pairs every upstream request carries (injected secrets). */
  readonly extraHeaders: readonly string[];
  readonly timeoutMs: number;
}

export class SessionOpenError extends Error {
  override name = "SessionOpenError";
}

/** An initialize answer is small; anything past this is not one. */
const MAX_ANSWER_BYTES = 1024 * 1024;
const REPLAY_ID = "mcp-sidecar-replay";

export async function openUpstreamSession(
  dispatcher: Dispatcher,
  open: SessionOpenRequest,
): Promise<OpenedSession> {
  const base = ["host", open.host, "content-type", "application/json", ...open.extraHeaders];
  const initialize = await send(
    dispatcher,
    open,
    [...base, "accept", "application/json, text/event-stream"],
    {
      jsonrpc: "2.0",
      id: REPLAY_ID,
      method: "initialize",
      params: open.params,
    },
  );
  if (initialize.status !== 200)
    throw new SessionOpenError(`the upstream answered initialize with ${initialize.status}`);
  const sessionId = initialize.sessionId;
  if (sessionId === undefined)
    throw new SessionOpenError("the upstream answered initialize without an Mcp-Session-Id");
  const result = resultOf(initialize.text, initialize.eventStream);
  if (result === undefined) throw new SessionOpenError("the upstream's initialize answer holds no result");
  const protocolVersion = typeof result.protocolVersion === "string" ? result.protocolVersion : undefined;
  const initialized = await send(
    dispatcher,
    open,
    [
      ...base,
      "accept",
      "application/json, text/event-stream",
      "mcp-session-id",
      sessionId,
      ...(protocolVersion === undefined ? [] : ["mcp-protocol-version", protocolVersion]),
    ],
    { jsonrpc: "2.0", method: "notifications/initialized" },
  );
  if (initialized.status >= 300)
    throw new SessionOpenError(`the upstream answered notifications/initialized with ${initialized.status}`);
  return { sessionId, protocolVersion };
}

interface Answered {
  readonly status: number;
  readonly sessionId: string | undefined;
  readonly eventStream: boolean;
  readonly text: string;
}

async function send(
  dispatcher: Dispatcher,
  open: SessionOpenRequest,
  headers: string[],
  message: unknown,
): Promise<Answered> {
  let response: Dispatcher.ResponseData;
  try {
    response = await dispatcher.request({
      path: open.path,
      method: "POST",
      headers,
      body: JSON.stringify(message),
      headersTimeout: open.timeoutMs,
      bodyTimeout: open.timeoutMs,
    });
  } catch (error) {
    throw new SessionOpenError(`the upstream failed: ${(error as Error).message}`);
  }
  const session = response.headers["mcp-session-id"];
  const type = String(response.headers["content-type"] ?? "");
  const eventStream = type.toLowerCase().startsWith("text/event-stream");
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_ANSWER_BYTES) {
      response.body.destroy();
      throw new SessionOpenError("the upstream's answer to initialize is larger than 1 MiB");
    }
    chunks.push(chunk);
    // A streamed answer may stay open after the result: stop at it.
    if (eventStream && resultOf(Buffer.concat(chunks).toString("utf8"), true) !== undefined) {
      response.body.destroy();
      break;
    }
  }
  return {
    status: response.statusCode,
    sessionId: typeof session === "string" ? session : undefined,
    eventStream,
    text: Buffer.concat(chunks).toString("utf8"),
  };
}

/** The `result` of the answer to the replayed initialize, from a JSON body or an event stream. */
function resultOf(text: string, eventStream: boolean): Record<string, unknown> | undefined {
  const candidates = eventStream
    ? sseEvents(text)
        .map(sseEventData)
        .filter((data): data is string => data !== undefined)
    : [text];
  for (const candidate of candidates) {
    try {
      const message = JSON.parse(candidate) as { id?: unknown; result?: unknown };
      if (message.id === REPLAY_ID && typeof message.result === "object" && message.result !== null)
        return message.result as Record<string, unknown>;
    } catch {
      // not JSON: another event
    }
  }
  return undefined;
}
