#!/usr/bin/env node
// The reference MCP server: the demo and test peer behind the sidecar. Streamable HTTP at /mcp on
// @modelcontextprotocol/sdk 1.x, sessions by default, stateless with --stateless.
//
// Host and Origin are validated as the SDK recommends for a server behind a proxy: it binds to
// loopback, `createMcpExpressApp` rejects any Host but the allowed ones (the sidecar sends the
// upstream's own Host), and a browser Origin must be listed explicitly.

import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { parseArgs } from "node:util";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { NextFunction, Request, Response } from "express";
import { buildMcpServer, SERVER_NAME } from "./tools.ts";

const HELP = `Usage: mcp-reference-server [options]

  --port PORT              Port (env MCP_SERVER_PORT; default 3000; 0 = any)
  --host HOST              Address to bind (env MCP_SERVER_HOST; default 127.0.0.1)
  --stateless              No sessions: a fresh server per request (env MCP_SERVER_STATELESS=1)
  --json-response          Answer requests with JSON instead of SSE (env MCP_SERVER_JSON_RESPONSE=1)
  --allowed-hosts LIST     Comma-separated Host names accepted (env MCP_SERVER_ALLOWED_HOSTS;
                           default: localhost, 127.0.0.1, [::1] when bound to loopback)
  --allowed-origins LIST   Comma-separated Origins accepted from browsers (env MCP_SERVER_ALLOWED_ORIGINS;
                           default: none; requests without Origin are always accepted)
  --secret-header NAME     Header carrying the secret that secret_fingerprint reports (env MCP_SERVER_SECRET_HEADER)
  --secret-file PATH       File holding that secret, read per call (env MCP_SERVER_SECRET_FILE)
  --drain-timeout MS       On SIGTERM, wait at most this long for in-flight requests (env MCP_SERVER_DRAIN_TIMEOUT; default 25000)
  -h, --help               This help

  healthcheck              Exit 0 when 127.0.0.1:$MCP_SERVER_PORT/health answers 200, else 1`;

interface ServerSettings {
  port: number;
  host: string;
  stateless: boolean;
  jsonResponse: boolean;
  allowedHosts: string[] | undefined;
  allowedOrigins: string[];
  secretHeader: string | undefined;
  secretFile: string | undefined;
  drainTimeoutMs: number;
}

/**
 * `healthcheck`: exit 0 when this server's /health answers 200 within 2 s, else 1. An exec-form
 * container health check: the runtime image has no shell and no curl.
 */
async function healthcheck(): Promise<never> {
  const port = process.env.MCP_SERVER_PORT || "3000";
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    process.exit(response.status === 200 ? 0 : 1);
  } catch (error) {
    process.stderr.write(`healthcheck: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

if (process.argv[2] === "healthcheck") await healthcheck();

function readSettings(): ServerSettings {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      stateless: { type: "boolean" },
      "json-response": { type: "boolean" },
      "allowed-hosts": { type: "string" },
      "allowed-origins": { type: "string" },
      "secret-header": { type: "string" },
      "secret-file": { type: "string" },
      "drain-timeout": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const env = process.env;
  const errors: string[] = [];
  const int = (name: string, raw: string | undefined, fallback: number, max: number): number => {
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0 || value > max)
      errors.push(`--${name}: "${raw}" is not a whole number 0-${max}`);
    return value;
  };
  const list = (raw: string | undefined): string[] | undefined =>
    raw === undefined || raw === ""
      ? undefined
      : raw
          .split(",")
          .map((item) => item.trim())
          .filter(Boolean);
  const flag = (value: boolean | undefined, raw: string | undefined): boolean =>
    value ?? (raw === "1" || raw === "true");
  const settings: ServerSettings = {
    port: int("port", values.port ?? env.MCP_SERVER_PORT, 3000, 65_535),
    host: values.host ?? env.MCP_SERVER_HOST ?? "127.0.0.1",
    stateless: flag(values.stateless, env.MCP_SERVER_STATELESS),
    jsonResponse: flag(values["json-response"], env.MCP_SERVER_JSON_RESPONSE),
    allowedHosts: list(values["allowed-hosts"] ?? env.MCP_SERVER_ALLOWED_HOSTS),
    allowedOrigins: list(values["allowed-origins"] ?? env.MCP_SERVER_ALLOWED_ORIGINS) ?? [],
    secretHeader: values["secret-header"] ?? env.MCP_SERVER_SECRET_HEADER,
    secretFile: values["secret-file"] ?? env.MCP_SERVER_SECRET_FILE,
    drainTimeoutMs: int(
      "drain-timeout",
      values["drain-timeout"] ?? env.MCP_SERVER_DRAIN_TIMEOUT,
      25_000,
      600_000,
    ),
  };
  if (errors.length > 0) {
    process.stderr.write(
      `mcp-reference-server: invalid configuration:\n${errors.map((e) => `  - ${e}`).join("\n")}\n`,
    );
    process.exit(2);
  }
  return settings;
}

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), service: SERVER_NAME, msg, ...fields })}\n`,
  );
}

function jsonRpcError(res: Response, status: number, message: string): void {
  res.status(status).json({ jsonrpc: "2.0", error: { code: -32000, message }, id: null });
}

const settings = readSettings();
const secrets = { header: settings.secretHeader, file: settings.secretFile };
const hooks = { toolStarted: (tool: string) => log("tool call", { tool }) };
const app = createMcpExpressApp({
  host: settings.host,
  ...(settings.allowedHosts ? { allowedHosts: settings.allowedHosts } : {}),
});

// Origin: absent for non-browser clients (accepted); present means a browser, which must be listed.
app.use((req: Request, res: Response, next: NextFunction) => {
  const origin = req.headers.origin;
  if (origin !== undefined && !settings.allowedOrigins.includes(origin)) {
    jsonRpcError(res, 403, `Forbidden: Origin ${origin} is not allowed`);
    return;
  }
  next();
});

app.get("/health", (_req: Request, res: Response) => {
  res.json({ status: draining ? "draining" : "ok" });
});

const sessions = new Map<string, StreamableHTTPServerTransport>();
let draining = false;

async function handleStateless(req: Request, res: Response): Promise<void> {
  if (req.method !== "POST") {
    res.setHeader("allow", "POST");
    jsonRpcError(res, 405, "Method not allowed: this server is stateless");
    return;
  }
  const server = buildMcpServer(secrets, hooks);
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: settings.jsonResponse,
  });
  res.on("close", () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
}

async function handleWithSessions(req: Request, res: Response): Promise<void> {
  const sessionId = req.headers["mcp-session-id"];
  if (typeof sessionId === "string") {
    const transport = sessions.get(sessionId);
    // Spec 2025-11-25: an unknown or expired session is 404, and the client starts a new one.
    if (!transport) return jsonRpcError(res, 404, "Session not found");
    await transport.handleRequest(req, res, req.body);
    return;
  }
  if (req.method !== "POST" || !isInitializeRequest(req.body)) {
    return jsonRpcError(res, 400, "Bad Request: No valid session ID provided");
  }
  const server = buildMcpServer(secrets, hooks);
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    enableJsonResponse: settings.jsonResponse,
    onsessioninitialized: (id) => {
      sessions.set(id, transport);
    },
    onsessionclosed: (id) => {
      sessions.delete(id);
    },
  });
  transport.onclose = () => {
    if (transport.sessionId) sessions.delete(transport.sessionId);
    void server.close();
  };
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
}

let inFlight = 0;
app.all("/mcp", (req: Request, res: Response) => {
  inFlight++;
  res.on("close", () => {
    inFlight--;
    if (draining && inFlight === 0) finishDrain();
  });
  const handle = settings.stateless ? handleStateless : handleWithSessions;
  handle(req, res).catch((error: unknown) => {
    log("request failed", { error: (error as Error).message });
    if (!res.headersSent) jsonRpcError(res, 500, "Internal server error");
  });
});

// Not app.listen(port, host, callback): Express 5 calls that callback on a listen error too, so a
// taken port logged "listening" before "cannot listen".
const httpServer: Server = createServer(app);
httpServer.once("listening", () => {
  const address = httpServer.address();
  const port = typeof address === "object" && address ? address.port : settings.port;
  log("listening", {
    url: `http://${settings.host.includes(":") ? `[${settings.host}]` : settings.host}:${port}/mcp`,
    port,
    stateless: settings.stateless,
    jsonResponse: settings.jsonResponse,
  });
});
httpServer.on("error", (error: NodeJS.ErrnoException) => {
  log("cannot listen", { host: settings.host, port: settings.port, code: error.code, error: error.message });
  process.exit(1);
});
httpServer.listen(settings.port, settings.host);
// Long tool calls and event streams: no request or socket timeout may cut them.
httpServer.requestTimeout = 0;
httpServer.keepAliveTimeout = 65_000;

function finishDrain(): void {
  log("stopped", { inFlight });
  process.exit(0);
}

// SIGTERM: stop accepting, let in-flight requests finish, close the standalone GET streams (they
// never end by themselves), and exit when nothing is left; a second signal exits at once.
function onSignal(signal: string): void {
  if (draining) {
    log("second signal: exiting now", { signal, inFlight });
    process.exit(1);
  }
  draining = true;
  log("draining", { signal, inFlight, sessions: sessions.size });
  httpServer.close();
  httpServer.closeIdleConnections();
  for (const transport of sessions.values()) transport.closeStandaloneSSEStream();
  if (inFlight === 0) finishDrain();
  setTimeout(() => {
    log("drain timeout: exiting with requests in flight", { inFlight });
    process.exit(1);
  }, settings.drainTimeoutMs).unref();
}
process.on("SIGTERM", () => onSignal("SIGTERM"));
process.on("SIGINT", () => onSignal("SIGINT"));
