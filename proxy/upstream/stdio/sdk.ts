// The MCP SDK parts the stdio upstream runs on (its Streamable HTTP server transport and its stdio
// framing), loaded only when a stdio server is configured: they bring zod, hono and the rest of
// the SDK, which an HTTP upstream never needs (test/startup-footprint.test.ts keeps that so).

import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";

export interface StdioSdk {
  readonly StreamableHTTPServerTransport: typeof StreamableHTTPServerTransport;
  readonly ReadBuffer: typeof ReadBuffer;
  readonly serializeMessage: typeof serializeMessage;
}

export async function loadStdioSdk(): Promise<StdioSdk> {
  const [http, stdio] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/shared/stdio.js"),
  ]);
  return {
    StreamableHTTPServerTransport: http.StreamableHTTPServerTransport,
    ReadBuffer: stdio.ReadBuffer,
    serializeMessage: stdio.serializeMessage,
  };
}
