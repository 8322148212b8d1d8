// The MCP SDK parts the stdio upstream runs on (its Streamable HTTP and legacy HTTP+SSE server
// transports, and its stdio framing), loaded only when a stdio server is configured: they bring zod, hono and the rest of
// the SDK, which an HTTP upstream never needs (test/startup-footprint.test.ts keeps that so).

import type { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";

export interface StdioSdk {
  readonly StreamableHTTPServerTransport: typeof StreamableHTTPServerTransport;
  readonly SSEServerTransport: typeof SSEServerTransport;
  readonly ReadBuffer: typeof ReadBuffer;
  readonly serializeMessage: typeof serializeMessage;
}

export async function loadStdioSdk(): Promise<StdioSdk> {
  const [http, legacy, stdio] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/server/sse.js"),
    import("@modelcontextprotocol/sdk/shared/stdio.js"),
  ]);
  return {
    StreamableHTTPServerTransport: http.StreamableHTTPServerTransport,
    SSEServerTransport: legacy.SSEServerTransport,
    ReadBuffer: stdio.ReadBuffer,
    serializeMessage: stdio.serializeMessage,
  };
}
