// A 2026-07-28 MCP server on the SDK 2.x packages (@modelcontextprotocol/server), on plain node:http:
// the test peer for the stateless generation. Run directly, it prints its URL as a JSON line.
//
// createMcpHandler is fetch-style; the sidecar's own node:http bridge (the stdio pool's,
// proxy/upstream/stdio/fetch-bridge.ts) passes the client's disconnect into Request.signal, which
// is how a 2026-07-28 server learns a call was cancelled.

import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  createMcpHandler,
  hostHeaderValidationResponse,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  McpServer,
  originValidationResponse,
} from "@modelcontextprotocol/server";
import * as z from "zod";
import { fetchRequestOf, writeFetchResponse } from "../../proxy/upstream/stdio/fetch-bridge.ts";

/** Emits "tool" with the tool's name as each call starts, for tests that wait on it. */
export const toolEvents = new EventEmitter();

function buildServer(): McpServer {
  const server = new McpServer(
    { name: "sdk2-peer", version: "1.0.0" },
    { capabilities: { tools: { listChanged: true } } },
  );
  server.registerTool(
    "echo",
    { description: "echo text", inputSchema: z.object({ message: z.string() }) },
    async ({ message }) => ({ content: [{ type: "text", text: message }] }),
  );
  server.registerTool(
    "slow",
    { description: "wait ms", inputSchema: z.object({ ms: z.number(), steps: z.number().default(5) }) },
    async ({ ms, steps }, ctx) => {
      toolEvents.emit("tool", "slow");
      const { signal, _meta } = ctx.mcpReq;
      const token = _meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms / steps);
          signal.addEventListener(
            "abort",
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
        if (signal.aborted) return { content: [{ type: "text", text: "cancelled" }], isError: true };
        if (token !== undefined) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken: token, progress: i, total: steps, message: `step ${i}` },
          });
        }
      }
      return { content: [{ type: "text", text: `waited ${ms} ms` }] };
    },
  );
  return server;
}

export const handler = createMcpHandler(() => buildServer(), { onerror: () => {} });

async function nodeToFetch(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const { request } = fetchRequestOf(req, res, hasBody ? Buffer.concat(chunks) : undefined);
  const response =
    hostHeaderValidationResponse(request, localhostAllowedHostnames()) ??
    originValidationResponse(request, localhostAllowedOrigins()) ??
    (await handler.fetch(request));
  await writeFetchResponse(response, res);
}

export async function startSdk2Server(port = 0): Promise<{ server: Server; url: URL }> {
  const server = createServer((req, res) => {
    if (new URL(req.url ?? "/", "http://x").pathname !== "/mcp") {
      res.writeHead(404).end();
      return;
    }
    nodeToFetch(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { url } = await startSdk2Server(Number(process.env.PORT ?? 0));
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: url.href })}\n`);
}
