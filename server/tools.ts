// The reference server's tools, on @modelcontextprotocol/sdk 1.x. A new McpServer per session (or
// per request when stateless), as the SDK requires one server per transport.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";

export interface SecretSources {
  /** Request header whose value is the secret (e.g. injected by the sidecar). */
  readonly header?: string | undefined;
  /** File holding the secret, read on every use (e.g. written by the sidecar). */
  readonly file?: string | undefined;
}

export const SERVER_NAME = "mcp-sidecar-reference-server";
export const SERVER_VERSION = "0.1.0";

/** First 12 hex characters of the SHA-256: enough to compare versions, useless to an attacker. */
export function fingerprint(secret: string): string {
  return createHash("sha256").update(secret).digest("hex").slice(0, 12);
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export interface ToolHooks {
  /** Called as each tool call starts (the server logs it; tests wait on it). */
  readonly toolStarted?: (tool: string) => void;
}

export function buildMcpServer(secrets: SecretSources, hooks: ToolHooks = {}): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    { capabilities: { logging: {} } },
  );
  const announce = (tool: string) => hooks.toolStarted?.(tool);

  server.registerTool(
    "echo",
    {
      description: "Returns the message it was given.",
      inputSchema: { message: z.string().describe("Text to echo back") },
    },
    async ({ message }) => {
      announce("echo");
      return { content: [{ type: "text", text: message }] };
    },
  );

  server.registerTool(
    "slow",
    {
      description:
        "Waits `ms` milliseconds. Sends progress notifications when the request carries a progress token; stops early when cancelled.",
      inputSchema: {
        ms: z.number().int().min(0).max(600_000).describe("How long to wait, in milliseconds"),
        steps: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(5)
          .describe("Progress notifications to send along the way"),
      },
    },
    async ({ ms, steps }, extra) => {
      announce("slow");
      const progressToken = extra._meta?.progressToken;
      const started = Date.now();
      for (let step = 1; step <= steps; step++) {
        await abortableDelay(ms / steps, extra.signal);
        if (extra.signal.aborted) {
          return {
            content: [{ type: "text", text: `cancelled after ${Date.now() - started} ms` }],
            isError: true,
          };
        }
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken, progress: step, total: steps, message: `step ${step} of ${steps}` },
          });
        }
      }
      return { content: [{ type: "text", text: `waited ${ms} ms` }] };
    },
  );

  server.registerTool(
    "broadcast",
    {
      description:
        "Sends `message` as a logging notification that belongs to no request, so it travels on the session's standalone GET stream.",
      inputSchema: { message: z.string() },
    },
    async ({ message }) => {
      announce("broadcast");
      await server.sendLoggingMessage({ level: "info", logger: "broadcast", data: message });
      return { content: [{ type: "text", text: "sent" }] };
    },
  );

  server.registerTool(
    "secret_fingerprint",
    {
      description:
        "Reports the first 12 hex characters of the SHA-256 of the secret this server received through its configured header and/or file. Never the value.",
      inputSchema: {},
    },
    async (_args, extra) => {
      announce("secret_fingerprint");
      const result: Record<string, string | null> = {};
      if (secrets.header !== undefined) {
        const value = extra.requestInfo?.headers[secrets.header.toLowerCase()];
        const text = Array.isArray(value) ? value[0] : value;
        result.header = text === undefined ? null : fingerprint(text);
      }
      if (secrets.file !== undefined) {
        try {
          result.file = fingerprint(await readFile(secrets.file, "utf8"));
        } catch (error) {
          result.file = null;
          result.fileError = (error as NodeJS.ErrnoException).code ?? "unreadable";
        }
      }
      if (secrets.header === undefined && secrets.file === undefined) {
        return {
          content: [{ type: "text", text: "no secret source configured (--secret-header, --secret-file)" }],
          isError: true,
        };
      }
      return { content: [{ type: "text", text: JSON.stringify(result) }], structuredContent: result };
    },
  );

  return server;
}
