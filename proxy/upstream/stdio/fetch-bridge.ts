// node:http to the fetch shape the MCP SDK 2.x's HTTP entry (createMcpHandler) serves, and back.
// Written here because the SDK's own adapter (@modelcontextprotocol/node) is a package more for
// these few lines; the body is already read (the sidecar bounds it), and a client that goes away
// aborts the request, which is how a 2026-07-28 server learns a call was cancelled.

import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { ReadableStream } from "node:stream/web";

/** The request, and how to abort it (the client went away, or the drain ends a listen stream). */
export function fetchRequestOf(
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer | undefined,
): { request: Request; abort: () => void } {
  const abort = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) abort.abort(new Error("the client went away"));
  });
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  const request = new Request(`http://stdio.invalid${req.url ?? "/"}`, {
    method: req.method ?? "GET",
    headers,
    ...(body !== undefined ? { body } : {}),
    signal: abort.signal,
  });
  return { request, abort: () => abort.abort(new Error("the sidecar is draining")) };
}

/** Writes a fetch Response to the client, streaming (a listen stream is endless). */
export async function writeFetchResponse(response: Response, res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  res.writeHead(response.status, [...response.headers].flat());
  if (response.body === null) {
    res.end();
    return;
  }
  res.flushHeaders();
  const body = Readable.fromWeb(response.body as ReadableStream<Uint8Array>);
  res.once("close", () => body.destroy());
  body.once("error", () => res.destroy());
  body.pipe(res);
}
