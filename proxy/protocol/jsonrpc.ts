// What the sidecar reads of an MCP message, and the JSON-RPC errors it writes itself. Pure.
//
// The body is forwarded unchanged and unparsed; this module looks at a bounded copy of it, after the
// fact, for logs and for error answers that MCP clients can match to their request by id.

export type JsonRpcId = string | number | null;

export interface McpMessageInfo {
  /** Ids of the JSON-RPC requests in the body (one, or several for a legacy batch). */
  readonly ids: readonly JsonRpcId[];
  /** The (first) method, e.g. `tools/call`. */
  readonly method: string | undefined;
  /** `params.name` of tools/call and prompts/get, `params.uri` of resources/read. */
  readonly name: string | undefined;
  /** True when the body holds at least one request (a message with an id and a method). */
  readonly hasRequest: boolean;
  /** True for a JSON array (a batch, removed in 2025-06-18 but still accepted by some servers). */
  readonly batch: boolean;
}

function nameOf(message: Record<string, unknown>): string | undefined {
  const params = message.params;
  if (typeof params !== "object" || params === null) return undefined;
  const p = params as Record<string, unknown>;
  if (message.method === "resources/read") return typeof p.uri === "string" ? p.uri : undefined;
  return typeof p.name === "string" ? p.name : undefined;
}

/** Reads a JSON-RPC message or batch; `undefined` when the bytes are not JSON-RPC. */
export function describeJsonRpc(body: Buffer | string): McpMessageInfo | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    return undefined;
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed];
  const ids: JsonRpcId[] = [];
  let method: string | undefined;
  let name: string | undefined;
  let jsonRpc = false;
  for (const message of messages) {
    if (
      typeof message !== "object" ||
      message === null ||
      (message as { jsonrpc?: unknown }).jsonrpc !== "2.0"
    )
      continue;
    jsonRpc = true;
    const m = message as Record<string, unknown>;
    if (typeof m.method === "string") {
      if (method === undefined) {
        method = m.method;
        name = nameOf(m);
      }
      const id = m.id;
      if (typeof id === "string" || typeof id === "number") ids.push(id);
    }
  }
  if (!jsonRpc) return undefined;
  return { ids, method, name, hasRequest: ids.length > 0, batch: Array.isArray(parsed) };
}

/**
 * Decodes an `Mcp-Method`/`Mcp-Name` header value (2026-07-28): non-ASCII values travel as
 * `=?base64?<base64 of UTF-8>?=`.
 */
export function decodeMcpHeaderValue(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(value);
  return match ? Buffer.from(match[1] ?? "", "base64").toString("utf8") : value;
}

/** JSON-RPC 2.0 reserves -32000..-32099 for implementation-defined server errors. */
export const SIDECAR_JSONRPC_ERROR_CODE = -32000;

export interface SidecarErrorData {
  /** Stable, documented code (README "Errors"), e.g. MCP_SIDECAR_UPSTREAM_UNREACHABLE. */
  readonly code: string;
  readonly status: number;
}

/**
 * The body of an error the sidecar answers itself. For a JSON-RPC request it is a JSON-RPC error
 * (an array for a batch) carrying the request's id, so an MCP client surfaces the message instead of
 * failing to parse; otherwise a plain JSON object.
 */
export function sidecarErrorBody(
  info: McpMessageInfo | undefined,
  data: SidecarErrorData,
  message: string,
): string {
  if (info?.hasRequest) {
    const errors = info.ids.map((id) => ({
      jsonrpc: "2.0",
      id,
      error: { code: SIDECAR_JSONRPC_ERROR_CODE, message, data },
    }));
    return JSON.stringify(info.batch ? errors : errors[0]);
  }
  return JSON.stringify({ error: { ...data, message } });
}
