// One MCP session of the stdio upstream: the MCP SDK's Streamable HTTP server transport (sessions,
// SSE, the GET stream, DELETE: the SDK's own protocol layer, not a hand-written one) joined to one
// child process speaking JSON-RPC on stdio. A child serves exactly one session (no cross-talk), and
// when it dies every request waiting on it is answered at once with a JSON-RPC error.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";
import { SIDECAR_ERRORS, type SidecarErrorSpec } from "../../errors.ts";
import { SIDECAR_JSONRPC_ERROR_CODE } from "../../protocol/jsonrpc.ts";
import type { Answer } from "../../protocol/outcome.ts";
import type { StdioSdk } from "./sdk.ts";

/** What a session needs of its child process (child.ts provides it). */
export interface ChildLink {
  /** False when the child is gone: the message was not sent. */
  send(message: JSONRPCMessage): boolean;
  onmessage: ((message: JSONRPCMessage) => void) | undefined;
  /** Once, when the child has exited: `description` says how ("exited with code 1", ...). */
  onexit: ((description: string) => void) | undefined;
  /** Stops the child's whole process group (stdin closed, SIGTERM, SIGKILL); resolves when gone. */
  stop(): Promise<unknown>;
}

export type SessionEnd = "deleted" | "idle" | "child_exited" | "rolled" | "stopped";

export interface SessionOptions {
  readonly sdk: StdioSdk;
  readonly keepAliveMs: number;
  readonly maxBodyBytes: number;
  readonly now: () => number;
  readonly newSessionId: () => string;
  /** The SDK assigned the session its id (its initialize answer carries it). */
  readonly initialized: (session: StdioSession, sessionId: string) => void;
  /** The session is over; its child is stopping or gone. */
  readonly ended: (session: StdioSession, why: SessionEnd) => void;
  /** The child answered for the first time, this long after the session started. */
  readonly firstAnswer?: (ms: number) => void;
}

const key = (id: RequestId) => `${typeof id}:${String(id)}`;

function isRequest(
  m: JSONRPCMessage,
): m is JSONRPCMessage & { id: RequestId; method: string; params?: unknown } {
  return "method" in m && "id" in m;
}
function isResponse(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } {
  return ("result" in m || "error" in m) && "id" in m;
}

export class StdioSession {
  readonly transport: StreamableHTTPServerTransport;
  readonly #child: ChildLink;
  readonly #options: SessionOptions;
  /** Requests sent to the child and not yet answered. */
  readonly #pending = new Map<string, RequestId>();
  /** progressToken -> the request it reports on, so progress goes on that request's stream. */
  readonly #progress = new Map<string, RequestId>();
  /** How the child answered each request (for the call's outcome in metrics and logs). */
  readonly #answers = new Map<string, Answer>();
  #sessionId: string | undefined;
  #openPosts = 0;
  #answeredAny = false;
  #exitDescription: string | undefined;
  #lastActivity: number;
  readonly #startedAt: number;
  #ended: SessionEnd | undefined;
  #stopped: Promise<unknown> | undefined;

  constructor(child: ChildLink, options: SessionOptions) {
    this.#child = child;
    this.#options = options;
    this.#lastActivity = options.now();
    this.#startedAt = this.#lastActivity;
    this.transport = new options.sdk.StreamableHTTPServerTransport({
      sessionIdGenerator: options.newSessionId,
      onsessioninitialized: (id) => {
        this.#sessionId = id;
        options.initialized(this, id);
      },
      onsessionclosed: () => {
        void this.end("deleted");
      },
      keepAliveMs: options.keepAliveMs,
      maxRequestBodySize: options.maxBodyBytes,
    });
    this.transport.onmessage = (message) => this.#fromClient(message);
    child.onmessage = (message) => this.#fromChild(message);
    child.onexit = (description) => this.#childExited(description);
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  get ended(): SessionEnd | undefined {
    return this.#ended;
  }

  /** Whether the child ever answered: one that dies before its first answer failed to start. */
  get answeredAny(): boolean {
    return this.#answeredAny;
  }

  /** How the child exited, when it did. */
  get exitDescription(): string | undefined {
    return this.#exitDescription;
  }

  /**
   * POSTs of this session still open, and requests the child has not answered yet: a session is
   * only retired (idle, rolled) with none. The GET stream does not count, or it would keep a
   * session of a vanished client forever.
   */
  get inFlight(): number {
    return this.#pending.size + this.#openPosts;
  }

  /** Time since the last request, or the last message either way. */
  idleFor(now: number): number {
    return now - this.#lastActivity;
  }

  /** Serves one HTTP request of this session (the body already read and parsed, when a POST). */
  handle(req: IncomingMessage, res: ServerResponse, parsedBody: unknown): Promise<void> {
    this.#lastActivity = this.#options.now();
    if (req.method === "POST") {
      this.#openPosts++;
      res.once("close", () => {
        this.#openPosts--;
        this.#lastActivity = this.#options.now();
      });
    }
    return this.transport.handleRequest(req, res, parsedBody);
  }

  /** How the child answered request `id`, once it has. */
  answerTo(id: RequestId): Answer | undefined {
    return this.#answers.get(key(id));
  }

  /** Ends the session: its child is stopped (whole group), its streams closed. Idempotent. */
  end(why: SessionEnd): Promise<unknown> {
    if (this.#ended === undefined) {
      this.#ended = why;
      this.#options.ended(this, why);
      this.#stopped = Promise.allSettled([this.#child.stop(), this.transport.close()]);
    }
    return this.#stopped as Promise<unknown>;
  }

  #fromClient(message: JSONRPCMessage): void {
    this.#lastActivity = this.#options.now();
    if (isRequest(message)) {
      this.#pending.set(key(message.id), message.id);
      const token = (message.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta
        ?.progressToken;
      if (typeof token === "string" || typeof token === "number")
        this.#progress.set(String(token), message.id);
    }
    if (!this.#child.send(message) && isRequest(message))
      this.#fail(message.id, SIDECAR_ERRORS.stdioChildExited, "the MCP server process is gone");
  }

  #fromChild(message: JSONRPCMessage): void {
    this.#lastActivity = this.#options.now();
    let related: RequestId | undefined;
    if (isResponse(message)) {
      if (!this.#answeredAny) this.#options.firstAnswer?.(this.#options.now() - this.#startedAt);
      this.#answeredAny = true;
      this.#pending.delete(key(message.id));
      this.#answers.set(key(message.id), answerOf(message));
      for (const [token, id] of this.#progress) if (id === message.id) this.#progress.delete(token);
    } else if ("method" in message) {
      const token = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
      related = token === undefined ? undefined : this.#progress.get(String(token));
      // A stdio message says nothing of the request it belongs to: while one request is in flight,
      // what the server sends (log lines, its own requests) most likely belongs to it, and goes on
      // its stream; otherwise on the GET stream.
      if (related === undefined && this.#pending.size === 1) related = [...this.#pending.values()][0];
    }
    this.transport
      .send(message, related === undefined ? undefined : { relatedRequestId: related })
      .catch(() => {
        // The client's stream is gone (it left, or the GET stream is not open): nothing to deliver to.
      });
  }

  #childExited(description: string): void {
    this.#exitDescription = description;
    const spec = this.#answeredAny ? SIDECAR_ERRORS.stdioChildExited : SIDECAR_ERRORS.stdioStartFailed;
    for (const id of [...this.#pending.values()])
      this.#fail(id, spec, `the MCP server process ${description}`);
    void this.end("child_exited");
  }

  /** Answers a request the child will never answer, with the sidecar's JSON-RPC error. */
  #fail(id: RequestId, spec: SidecarErrorSpec, message: string): void {
    this.#pending.delete(key(id));
    this.#answers.set(key(id), "error");
    const error = {
      jsonrpc: "2.0" as const,
      id,
      error: { code: SIDECAR_JSONRPC_ERROR_CODE, message, data: { code: spec.code, status: spec.status } },
    };
    this.transport.send(error).catch(() => {});
  }
}

function answerOf(message: JSONRPCMessage): Answer {
  if ("error" in message) return "error";
  const result = (message as { result?: { isError?: unknown } }).result;
  return result?.isError === true ? "tool_error" : "result";
}
