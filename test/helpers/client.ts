// HTTP client helpers for tests: undici on a dedicated agent, streams read incrementally.
import { connect } from "node:net";
import { Agent, type Dispatcher, request } from "undici";
import { capture } from "./capture.ts";

export const agent = new Agent({ keepAliveTimeout: 1000, bodyTimeout: 0, headersTimeout: 0 });

export interface OpenStream {
  readonly status: number;
  readonly headers: Dispatcher.ResponseData["headers"];
  /** Everything received so far. */
  text(): string;
  /** Resolves once the received text satisfies `test` (or rejects when the stream ends first). */
  waitFor(test: (text: string) => boolean, what?: string): Promise<string>;
  /** Resolves with the whole text when the stream ends. */
  readonly ended: Promise<string>;
  abort(): void;
}

export async function openStream(
  url: URL | string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string } = {},
): Promise<OpenStream> {
  const controller = new AbortController();
  const response = await request(url, {
    dispatcher: agent,
    method: options.method ?? "GET",
    headers: options.headers ?? { accept: "text/event-stream" },
    body: options.body,
    signal: controller.signal,
  });
  let received = "";
  const waiters = new Set<() => void>();
  let done = false;
  let failure: unknown;
  const ended = (async () => {
    try {
      for await (const chunk of response.body) {
        received += (chunk as Buffer).toString("utf8");
        for (const wake of waiters) wake();
      }
    } catch (error) {
      failure = error;
    } finally {
      capture("response stream", `${response.statusCode} ${JSON.stringify(response.headers)} ${received}`);
      done = true;
      for (const wake of waiters) wake();
    }
    if (failure !== undefined) throw failure;
    return received;
  })();
  ended.catch(() => {});
  return {
    status: response.statusCode,
    headers: response.headers,
    text: () => received,
    ended,
    abort: () => controller.abort(),
    waitFor(test, what = "the expected text") {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (test(received)) {
            waiters.delete(check);
            resolve(received);
          } else if (done) {
            waiters.delete(check);
            reject(new Error(`stream ended before ${what}; received: ${JSON.stringify(received)}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export async function send(
  url: URL | string,
  options: {
    method?: Dispatcher.HttpMethod;
    headers?: Record<string, string> | string[];
    body?: string | Buffer;
    /** Another dispatcher than the shared keep-alive agent (e.g. one connection per request). */
    dispatcher?: Dispatcher;
  } = {},
): Promise<{
  status: number;
  headers: Dispatcher.ResponseData["headers"];
  text: string;
  json: () => unknown;
}> {
  const response = await request(url, {
    dispatcher: options.dispatcher ?? agent,
    method: options.method ?? "GET",
    headers: options.headers,
    body: options.body,
  });
  const text = await response.body.text();
  capture("response", `${response.statusCode} ${JSON.stringify(response.headers)} ${text}`);
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** The body of a 2025-11-25 `initialize` request (id 1) from a client named `clientName`. */
export function initializeBody(clientName: string): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: clientName, version: "1" },
    },
  });
}

/** A promise with its resolve function, for upstreams that wait on the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A WebSocket upgrade request (the sidecar refuses them). */
export const WEBSOCKET_UPGRADE =
  "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/** Writes `text` on a new connection and returns everything the server sends until it closes it. */
export async function rawExchange(url: URL, text: string): Promise<string> {
  const socket = connect(Number(url.port), url.hostname);
  socket.write(text);
  socket.setEncoding("utf8");
  let received = "";
  for await (const chunk of socket) received += chunk;
  return received;
}
