// The MCP SDK parts the stdio upstream runs on (its Streamable HTTP and legacy HTTP+SSE server
// transports, and its stdio framing), loaded only when a stdio server is configured: they bring zod, hono and the rest of
// the SDK, which an HTTP upstream never needs (test/startup-footprint.test.ts keeps that so).

import type { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";

export interface StdioSdk {
  readonly StreamableHTTPServerTransport: typeof StreamableHTTPServerTransport;
  readonly SSEServerTransport: typeof SSEServerTransport;
  readonly ReadBuffer: typeof ReadBuffer;
  readonly serializeMessage: typeof serializeMessage;
  /** The revisions its transport accepts in MCP-Protocol-Version (the sidecar's own call path checks the same). */
  readonly supportedProtocolVersions: typeof SUPPORTED_PROTOCOL_VERSIONS;
}

export async function loadStdioSdk(): Promise<StdioSdk> {
  const [http, legacy, stdio, types] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/server/sse.js"),
    import("@modelcontextprotocol/sdk/shared/stdio.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  return {
    StreamableHTTPServerTransport: http.StreamableHTTPServerTransport,
    SSEServerTransport: legacy.SSEServerTransport,
    ReadBuffer: stdio.ReadBuffer,
    serializeMessage: stdio.serializeMessage,
    supportedProtocolVersions: types.SUPPORTED_PROTOCOL_VERSIONS,
  };
}

/**
 * The MCP SDK 2.x parts of the stateless pool (2026-07-28): its HTTP entry and server, which
 * speak the revision to the client, and its client, which speaks to each child in the 2025-era
 * protocol the child knows; the SDK converts between the two. Loaded only with --stdio-pool.
 */
export interface StatelessSdk {
  readonly createMcpHandler: typeof import("@modelcontextprotocol/server").createMcpHandler;
  readonly Server: typeof import("@modelcontextprotocol/server").Server;
  readonly Client: typeof import("@modelcontextprotocol/client").Client;
}

export async function loadStatelessSdk(): Promise<StatelessSdk> {
  const [server, client] = await Promise.all([
    import("@modelcontextprotocol/server"),
    import("@modelcontextprotocol/client"),
  ]);
  return { createMcpHandler: server.createMcpHandler, Server: server.Server, Client: client.Client };
}
