// One MCP session of the stdio upstream: one of the MCP SDK's server transports (the SDK's own
// protocol layer, not a hand-written one) joined to one child process speaking JSON-RPC on stdio.
// Streamable HTTP 2025-11-25 (sessions, SSE, the GET stream, DELETE) or the legacy HTTP+SSE
// transport (2024-11-05: a GET stream that names where to POST; the answers come on the stream).
// A child serves exactly one session (no cross-talk), and when it dies every request waiting on it
// is answered at once with a JSON-RPC error.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage, RequestId } from "@modelcontextprotocol/sdk/types.js";
import { SIDECAR_ERRORS, type SidecarErrorSpec } from "../../errors.ts";
import { SIDECAR_JSONRPC_ERROR_CODE } from "../../protocol/jsonrpc.ts";
import type { Answer } from "../../protocol/outcome.ts";
import { AnswerStreams, headersPassSdkChecks, plainRequestOf } from "./answer-streams.ts";
import { CallAnswers } from "./call-answers.ts";
import { answerOf, isRequest, isResponse, requestKey as key } from "./messages.ts";
import type { StdioSdk } from "./sdk.ts";

/** What a session needs of its child process (child.ts provides it). */
export interface ChildLink {
  /** False when the child is gone: the message was not sent. */
  send(message: JSONRPCMessage): boolean;
  onmessage: ((message: JSONRPCMessage) => void) | undefined;
  /** Once, when the child has exited: `description` says how ("exited with code 1", ...), for clients. */
  onexit: ((description: string) => void) | undefined;
  /** Stops the child's whole process group (stdin closed, SIGTERM, SIGKILL); resolves when gone. */
  stop(): Promise<unknown>;
}

/** deleted: DELETE (Streamable HTTP); disconnected: the legacy stream closed, which ends its session. */
export type SessionEnd =
  | "deleted"
  | "disconnected"
  | "idle"
  | "child_exited"
  | "rolled"
  | "stopped"
  /** The SDK refused its initialize: no session was made. */
  | "refused";

/** A legacy HTTP+SSE session: its GET stream, and the path its `endpoint` event names for POSTs. */
export interface LegacyStream {
  readonly stream: ServerResponse;
  readonly endpoint: string;
}

export interface SessionOptions {
  readonly sdk: StdioSdk;
  readonly keepAliveMs: number;
  readonly maxBodyBytes: number;
  readonly now: () => number;
  readonly newSessionId: () => string;
  /** Set for a legacy HTTP+SSE session; Streamable HTTP otherwise. */
  readonly legacy?: LegacyStream;
  /** The SDK assigned the session its id (its initialize answer carries it). */
  readonly initialized: (session: StdioSession, sessionId: string) => void;
  /** The session is over; its child is stopping or gone. */
  readonly ended: (session: StdioSession, why: SessionEnd) => void;
  /** The child answered for the first time, this long after the session started. */
  readonly firstAnswer?: (ms: number) => void;
}

export class StdioSession {
  readonly #streamable: StreamableHTTPServerTransport | undefined;
  readonly #legacy: SSEServerTransport | undefined;
  /** The streams of the calls the sidecar answers itself (Streamable HTTP only). */
  readonly #answerStreams: AnswerStreams | undefined;
  readonly #child: ChildLink;
  readonly #options: SessionOptions;
  /** Requests sent to the child and not yet answered. */
  readonly #pending = new Map<string, RequestId>();
  /** progressToken -> the request it reports on, so progress goes on that request's stream. */
  readonly #progress = new Map<string, RequestId>();
  /** How the child answered each request (for the call's outcome in metrics and logs). */
  readonly #answers = new CallAnswers();
  #sessionId: string | undefined;
  #openPosts = 0;
  #answeredAny = false;
  #exitDescription: string | undefined;
  #lastActivity: number;
  readonly #startedAt: number;
  #ended: SessionEnd | undefined;
  #stopped: Promise<unknown> | undefined;
  /** Called once no request of this session awaits its answer. */
  #whenAnswered: (() => void) | undefined;
  /** The client has sent something after its initialize (its `notifications/initialized`, a call). */
  #handshakeDone = false;
  /** A legacy stream's keepalive, due once it has been silent for --sse-keepalive. */
  #keepalive: ReturnType<typeof setTimeout> | undefined;
  /** The drain is ending this legacy stream: its session ends as stopped, not disconnected. */
  #draining = false;

  constructor(child: ChildLink, options: SessionOptions) {
    this.#child = child;
    this.#options = options;
    this.#lastActivity = options.now();
    this.#startedAt = this.#lastActivity;
    if (options.legacy === undefined) {
      this.#answerStreams = new AnswerStreams(options.keepAliveMs);
      this.#streamable = new options.sdk.StreamableHTTPServerTransport({
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
      this.#streamable.onmessage = (message) => this.#fromClient(message);
    } else {
      this.#legacy = new options.sdk.SSEServerTransport(options.legacy.endpoint, options.legacy.stream);
      // The SDK picks a legacy session's id itself; this one was chosen before its child started,
      // so that the child's log lines name it. (A field of the pinned SDK: the legacy test reads
      // the endpoint event's sessionId back.)
      this.#sessionId = options.newSessionId();
      (this.#legacy as unknown as { _sessionId: string })._sessionId = this.#sessionId;
      this.#legacy.onmessage = (message) => this.#fromClient(message);
      this.#legacy.onclose = () => void this.end(this.#draining ? "stopped" : "disconnected");
      this.#keepLegacyStreamAlive(options.legacy.stream, options.keepAliveMs);
    }
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

  /**
   * Whether the client is past its handshake. A session retired between its initialize answer and
   * the client's `notifications/initialized` would fail the client's connect itself (the SDK client
   * throws on that 404); retired after it, the client's next call gets the 404 and it
   * re-initializes, as the spec asks.
   */
  get handshakeDone(): boolean {
    return this.#handshakeDone;
  }

  /** Time since the last request, or the last message either way. */
  idleFor(now: number): number {
    return now - this.#lastActivity;
  }

  get isLegacy(): boolean {
    return this.#legacy !== undefined;
  }

  /** A legacy session's GET: its stream opens with the `endpoint` event. */
  openLegacyStream(): Promise<void> {
    return this.#legacy?.start() ?? Promise.resolve();
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
    if (this.#legacy !== undefined) return this.#legacy.handlePostMessage(req, res, parsedBody);
    if (req.method === "POST" && this.#answerCall(req, res, parsedBody)) return Promise.resolve();
    return (this.#streamable as StreamableHTTPServerTransport).handleRequest(req, res, parsedBody);
  }

  /** Takes a POST of one plain request past the SDK's transport (answer-streams.ts says why). */
  #answerCall(req: IncomingMessage, res: ServerResponse, parsedBody: unknown): boolean {
    const streams = this.#answerStreams;
    const request = plainRequestOf(parsedBody);
    if (streams === undefined || this.#sessionId === undefined || request === undefined) return false;
    // An id still in flight is the client's mistake, and the SDK's to handle as it does.
    if (this.#pending.has(key(request.id))) return false;
    if (!headersPassSdkChecks(req, this.#sessionId, this.#options.sdk.supportedProtocolVersions))
      return false;
    streams.open(res, request.id, this.#sessionId);
    this.#fromClient(request as JSONRPCMessage);
    return true;
  }

  /**
   * The drain ends this session's endless stream. A 2025-11-25 GET stream ends at once (the SDK
   * writes no `retry:` of its own; the client reconnects, to another task). A legacy stream carries
   * the answers to what was posted before the drain: it ends once they are all out, with `retry:`
   * first (the 2024-11-05 transport has no resumption: the client's reconnect is a new session).
   */
  closeStream(retryMs: number): void {
    if (this.#streamable !== undefined) {
      this.#streamable.closeStandaloneSSEStream();
      return;
    }
    const stream = this.#options.legacy?.stream;
    this.#draining = true;
    this.#whenAnswered = () => {
      if (stream !== undefined && !stream.writableEnded) stream.write(`retry: ${retryMs}\n\n`);
      void this.#legacy?.close();
    };
    if (this.#pending.size === 0) this.#answered();
  }

  /** How the child answered request `id`, once it has; asked once, by the exchange's summary. */
  answerTo(id: RequestId): Answer | undefined {
    return this.#answers.take(id);
  }

  /** Calls `then` once request `id` is answered, with how; with undefined if the session ends first. */
  onAnswer(id: RequestId, then: (answer: Answer | undefined) => void): void {
    this.#answers.onAnswer(id, then);
  }

  /** Ends the session: its child is stopped (whole group), its streams closed. Idempotent. */
  end(why: SessionEnd): Promise<unknown> {
    if (this.#ended === undefined) {
      this.#ended = why;
      this.#options.ended(this, why);
      const transport = this.#streamable ?? this.#legacy;
      this.#answerStreams?.closeAll();
      this.#answers.end();
      this.#stopped = Promise.allSettled([this.#child.stop(), transport?.close()]);
    }
    return this.#stopped as Promise<unknown>;
  }

  #fromClient(message: JSONRPCMessage): void {
    this.#lastActivity = this.#options.now();
    if (!("method" in message) || message.method !== "initialize") this.#handshakeDone = true;
    if (isRequest(message)) {
      this.#pending.set(key(message.id), message.id);
      const token = (message.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta
        ?.progressToken;
      if (typeof token === "string" || typeof token === "number")
        this.#progress.set(String(token), message.id);
    }
    if (!this.#child.send(message) && isRequest(message))
      this.#fail(message.id, SIDECAR_ERRORS.stdioChildExited, "the MCP server process is gone");
    if ("method" in message && message.method === "notifications/cancelled") this.#cancelled(message.params);
  }

  /**
   * The client cancelled a request, which the server may now leave unanswered (the spec lets it,
   * and the SDK's servers do): it is no longer in flight, or it would keep its session from ever
   * being idle. Its stream ends; a late answer has nowhere to go.
   */
  #cancelled(params: unknown): void {
    const id = (params as { requestId?: unknown } | undefined)?.requestId;
    if (typeof id !== "string" && typeof id !== "number") return;
    this.#answerStreams?.endWithoutAnswer(id);
    this.#answers.cancelled(id);
    for (const [token, of] of this.#progress) if (of === id) this.#progress.delete(token);
    if (this.#pending.delete(key(id)) && this.#pending.size === 0) this.#answered();
  }

  #fromChild(message: JSONRPCMessage): void {
    this.#lastActivity = this.#options.now();
    let related: RequestId | undefined;
    if (isResponse(message)) {
      if (!this.#answeredAny) this.#options.firstAnswer?.(this.#options.now() - this.#startedAt);
      this.#answeredAny = true;
      this.#answers.answered(message.id, answerOf(message));
      for (const [token, id] of this.#progress) if (id === message.id) this.#progress.delete(token);
      this.#send(message, undefined);
      if (this.#pending.delete(key(message.id)) && this.#pending.size === 0) this.#answered();
      return;
    } else if ("method" in message) {
      const token = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
      related = token === undefined ? undefined : this.#progress.get(String(token));
      // A stdio message says nothing of the request it belongs to: while one request is in flight,
      // what the server sends (log lines, its own requests) most likely belongs to it, and goes on
      // its stream; otherwise on the GET stream.
      if (related === undefined && this.#pending.size === 1) related = [...this.#pending.values()][0];
    }
    this.#send(message, related);
  }

  /** To the client: on the stream of request `related` when given (Streamable HTTP only). */
  #send(message: JSONRPCMessage, related: RequestId | undefined): void {
    this.#keepalive?.refresh();
    const answer = isResponse(message);
    const id = answer ? message.id : related;
    if (id !== undefined && this.#answerStreams?.deliver(id, message, answer)) return;
    const transport = this.#streamable ?? this.#legacy;
    transport?.send(message, related === undefined ? undefined : { relatedRequestId: related }).catch(() => {
      // The client's stream is gone (it left, or the GET stream is not open): nothing to deliver to.
    });
  }

  #answered(): void {
    const then = this.#whenAnswered;
    this.#whenAnswered = undefined;
    then?.();
  }

  /**
   * The SDK's legacy transport writes no keepalives; a balancer's idle timeout (ALB: 60 s) would
   * cut a quiet stream, so an SSE comment line goes out once it has been silent for
   * --sse-keepalive: the timer is re-armed by every message sent. The transport writes whole
   * events, so a comment never lands inside one.
   */
  #keepLegacyStreamAlive(stream: ServerResponse, everyMs: number): void {
    if (everyMs <= 0) return;
    const beat = () => {
      if (stream.headersSent && !stream.writableEnded) stream.write(": keepalive\n\n");
      this.#keepalive?.refresh();
    };
    this.#keepalive = setTimeout(beat, everyMs);
    this.#keepalive.unref();
    stream.once("close", () => clearTimeout(this.#keepalive));
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
    this.#answers.answered(id, "error");
    const error = {
      jsonrpc: "2.0" as const,
      id,
      error: { code: SIDECAR_JSONRPC_ERROR_CODE, message, data: { code: spec.code, status: spec.status } },
    };
    this.#send(error, undefined);
    if (this.#pending.delete(key(id)) && this.#pending.size === 0) this.#answered();
  }
}
