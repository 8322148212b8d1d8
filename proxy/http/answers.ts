// The one writer of the answers the sidecar gives itself instead of the upstream's: 401, 413, 431,
// 502, 503 while draining, 504 and the rest of SIDECAR_ERRORS. For a JSON-RPC request the body is a
// JSON-RPC error carrying its id (protocol/jsonrpc.ts), so an MCP client shows the message instead
// of failing to parse.

import type { ServerResponse } from "node:http";
import type { SidecarErrorSpec } from "../errors.ts";
import { type McpMessageInfo, sidecarErrorBody } from "../protocol/jsonrpc.ts";
import { STATUS_CODES } from "./node-http.ts";

export interface SidecarAnswerOptions {
  /** The request's JSON-RPC message(s), when known: the error then carries their ids. */
  readonly message?: McpMessageInfo | undefined;
  /** Adds Retry-After, in whole seconds (at least 1). */
  readonly retryAfterMs?: number | undefined;
  /** Ends the connection after the answer. */
  readonly close?: boolean;
  /** More headers (e.g. WWW-Authenticate for a 401). */
  readonly headers?: Readonly<Record<string, string>>;
}

function answer(spec: SidecarErrorSpec, text: string, options: SidecarAnswerOptions) {
  const body = sidecarErrorBody(options.message, { code: spec.code, status: spec.status }, text);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  };
  if (options.retryAfterMs !== undefined)
    headers["retry-after"] = Math.max(1, Math.ceil(options.retryAfterMs / 1000));
  // Node reads this header and closes the socket once the answer is out.
  if (options.close) headers.connection = "close";
  if (options.headers) Object.assign(headers, options.headers);
  return { body, headers };
}

/** Writes the sidecar's own error answer; false (and nothing written) when the response has begun. */
export function writeSidecarError(
  res: ServerResponse,
  spec: SidecarErrorSpec,
  text: string,
  options: SidecarAnswerOptions = {},
): boolean {
  if (res.headersSent || res.destroyed) return false;
  const { body, headers } = answer(spec, text, options);
  res.writeHead(spec.status, headers);
  res.end(body);
  return true;
}

/** The same answer as raw HTTP/1.1, for a socket Node hands over bare (an upgrade request). */
export function rawSidecarError(
  spec: SidecarErrorSpec,
  text: string,
  options: SidecarAnswerOptions = {},
): string {
  const { body, headers } = answer(spec, text, options);
  let head = `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status]}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}\r\n${body}`;
}
