// The readiness probe of the upstream: one request, bounded in time and size, that resolves (never
// rejects) to a CheckResult.
//
// The `mcp` probe POSTs a JSON-RPC `ping` with only Accept and Content-Type, and counts any JSON-RPC
// answer below 500 as up. That is deliberate: a 2025-11-25 server with sessions answers 400 "No valid
// session ID" (the MCP layer is alive and parsed the message), a stateless or 2026-07-28 server
// answers the ping itself, and `initialize` would create a session on every probe. Something that is
// not an MCP endpoint (404 page, 406/415, HTML) does not count.

import { connect } from "node:net";
import type { Dispatcher } from "undici";
import type { ReadyProbeKind } from "../../config.ts";
import { classifyTransportError, isTimeout } from "../../http/transport-errors.ts";
import type { CheckResult } from "../../lifecycle/readiness.ts";
import { describeJsonRpc } from "../../protocol/jsonrpc.ts";
import { sseEventData, sseEvents } from "../../protocol/sse.ts";

const PROBE_BODY = JSON.stringify({ jsonrpc: "2.0", id: "mcp-sidecar-ready", method: "ping" });
const MAX_PROBE_BODY_BYTES = 64 * 1024;
export const UPSTREAM_CHECK_NAME = "upstream";

export interface ProbeSettings {
  readonly kind: ReadyProbeKind;
  readonly path: string;
  readonly timeoutMs: number;
  readonly upstream: URL;
  /** A dispatcher of its own, so a pool full of long streams does not fail readiness. */
  readonly dispatcher: Dispatcher;
  /** Headers every upstream request carries (the injected secrets: the upstream may require them). */
  readonly extraHeaders?: () => readonly string[];
}

function fail(reason: string, started: number): CheckResult {
  return { name: UPSTREAM_CHECK_NAME, ok: false, reason, latencyMs: Date.now() - started };
}

function describeError(error: unknown, settings: ProbeSettings): string {
  const { failure, code } = classifyTransportError(error);
  if (failure === "refused") return `connection refused by ${settings.upstream.host}`;
  if (isTimeout(failure)) return `no answer from ${settings.upstream.host} within ${settings.timeoutMs} ms`;
  return `${code ?? (error as Error).name}: ${(error as Error).message}`;
}

/** First JSON-RPC message in an SSE body: the data of the first event that has any. */
function firstSseData(text: string): string | undefined {
  for (const event of sseEvents(text)) {
    const data = sseEventData(event);
    if (data !== undefined) return data;
  }
  return undefined;
}

export async function probeUpstream(settings: ProbeSettings): Promise<CheckResult> {
  const started = Date.now();
  if (settings.kind === "tcp") return probeTcp(settings, started);
  const signal = AbortSignal.timeout(settings.timeoutMs);
  const headers: string[] = ["host", settings.upstream.host, "user-agent", "mcp-sidecar-readiness"];
  if (settings.kind === "mcp")
    headers.push("accept", "application/json, text/event-stream", "content-type", "application/json");
  if (settings.extraHeaders) headers.push(...settings.extraHeaders());
  try {
    const response = await settings.dispatcher.request({
      origin: settings.upstream.origin,
      path: settings.path,
      method: settings.kind === "mcp" ? "POST" : "GET",
      headers,
      body: settings.kind === "mcp" ? PROBE_BODY : null,
      signal,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
    });
    const status = response.statusCode;
    if (settings.kind === "http") {
      await response.body.dump({ limit: MAX_PROBE_BODY_BYTES });
      if (status >= 200 && status < 300)
        return { name: UPSTREAM_CHECK_NAME, ok: true, latencyMs: Date.now() - started };
      return fail(`GET ${settings.path} answered ${status}`, started);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size > MAX_PROBE_BODY_BYTES) break;
    }
    if (size > MAX_PROBE_BODY_BYTES) response.body.destroy();
    const text = Buffer.concat(chunks).toString("utf8");
    const contentType = String(response.headers["content-type"] ?? "");
    const message = contentType.startsWith("text/event-stream") ? firstSseData(text) : text;
    const info = message === undefined ? undefined : describeJsonRpc(message);
    if (status < 500 && info !== undefined) {
      return { name: UPSTREAM_CHECK_NAME, ok: true, latencyMs: Date.now() - started };
    }
    return fail(
      `POST ${settings.path} answered ${status} without a JSON-RPC message (is it an MCP endpoint?)`,
      started,
    );
  } catch (error) {
    return fail(describeError(error, settings), started);
  }
}

function probeTcp(settings: ProbeSettings, started: number): Promise<CheckResult> {
  const port = Number(settings.upstream.port || (settings.upstream.protocol === "https:" ? 443 : 80));
  const host = settings.upstream.hostname.replace(/^\[(.*)\]$/, "$1");
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: settings.timeoutMs });
    socket.once("connect", () => {
      socket.destroy();
      resolve({ name: UPSTREAM_CHECK_NAME, ok: true, latencyMs: Date.now() - started });
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(fail(`no connection to ${settings.upstream.host} within ${settings.timeoutMs} ms`, started));
    });
    socket.once("error", (error) => resolve(fail(describeError(error, settings), started)));
  });
}
