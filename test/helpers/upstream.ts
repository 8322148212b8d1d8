// A scriptable upstream on a real ephemeral port: each test installs the handler it needs.
import type { IncomingMessage, RequestListener, Server, ServerResponse } from "node:http";
import { closeHttp, listenHttp } from "./net.ts";

export interface TestUpstream {
  readonly server: Server;
  readonly url: URL;
  /** Replaces the request handler. */
  handle(handler: RequestListener): void;
  /** Back to the default handler (200 `{"ok":true}`), with `seen` emptied. */
  reset(): void;
  /** Requests seen so far (method, url, raw headers). */
  readonly seen: { method: string; url: string; rawHeaders: string[] }[];
  close(): Promise<void>;
}

export async function startUpstream(): Promise<TestUpstream> {
  const initial: RequestListener = (req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"ok":true}');
  };
  let current = initial;
  const seen: TestUpstream["seen"] = [];
  const { server, url } = await listenHttp((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders });
    current(req, res);
  });
  return {
    server,
    url,
    seen,
    handle(handler) {
      current = handler;
    },
    reset() {
      current = initial;
      seen.length = 0;
    },
    close: () => closeHttp(server),
  };
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Answers a JSON-RPC ping the way an MCP server does (the mcp readiness probe). */
export function answerJsonRpc(req: IncomingMessage, res: ServerResponse): void {
  void readBody(req).then((body) => {
    const id = (JSON.parse(body.toString() || "{}") as { id?: unknown }).id ?? null;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ jsonrpc: "2.0", id, result: {} }));
  });
}
