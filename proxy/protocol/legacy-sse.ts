// The legacy HTTP+SSE transport (2024-11-05), followed closely enough to drain it by call: a GET
// stream whose first event, `endpoint`, names the URL the client POSTs its messages to; each POST
// is answered 202 and the JSON-RPC response comes on the GET stream. So a request "in flight" in
// this transport is an id posted to a session and not yet answered on its stream, and a drain must
// keep that stream open until every such id is answered (then end it cleanly).
//
// Pure: chunks of the GET stream and POST targets in, pending ids out. The SSE parsing is
// eventsource-parser's (the parser the MCP SDK itself uses).

import { StringDecoder } from "node:string_decoder";
import { createParser, type EventSourceParser } from "eventsource-parser";
import type { JsonRpcId } from "./jsonrpc.ts";

const idKey = (id: JsonRpcId) => `${typeof id}:${String(id)}`;

/** The POST target an `endpoint` event names, as a request line carries it (path and query). */
export function endpointTarget(endpoint: string, streamTarget: string): string | undefined {
  try {
    const url = new URL(endpoint.trim(), new URL(streamTarget, "http://sidecar.invalid"));
    return url.pathname + url.search;
  } catch {
    return undefined;
  }
}

/** The ids of the JSON-RPC responses in one event's data (a message or a batch). */
function answeredIds(data: string): JsonRpcId[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return [];
  }
  const ids: JsonRpcId[] = [];
  for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof message !== "object" || message === null) continue;
    const m = message as Record<string, unknown>;
    if (("result" in m || "error" in m) && (typeof m.id === "string" || typeof m.id === "number"))
      ids.push(m.id);
  }
  return ids;
}

/** One legacy GET stream: its endpoint once announced, and the ids posted to it still unanswered. */
export class LegacyStream {
  readonly #sessions: LegacySessions;
  readonly #streamTarget: string;
  readonly #decoder = new StringDecoder("utf8");
  readonly #parser: EventSourceParser;
  readonly #pending = new Set<string>();
  #endpoint: string | undefined;
  #whenAnswered: (() => void) | undefined;

  constructor(sessions: LegacySessions, streamTarget: string) {
    this.#sessions = sessions;
    this.#streamTarget = streamTarget;
    this.#parser = createParser({
      onEvent: (event) => {
        if (event.event === "endpoint" && this.#endpoint === undefined) {
          this.#endpoint = endpointTarget(event.data, this.#streamTarget);
          if (this.#endpoint !== undefined) this.#sessions.register(this.#endpoint, this);
          return;
        }
        for (const id of answeredIds(event.data)) this.#pending.delete(idKey(id));
        this.#checkAnswered();
      },
    });
  }

  /** The POST target the stream's endpoint event named, once it has. */
  get endpoint(): string | undefined {
    return this.#endpoint;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** A chunk of the stream, as it goes to the client. */
  feed(chunk: Buffer): void {
    this.#parser.feed(this.#decoder.write(chunk));
  }

  /** Requests posted to this stream's session: their answers are due on it. */
  expect(ids: readonly JsonRpcId[]): void {
    for (const id of ids) this.#pending.add(idKey(id));
  }

  /** Requests whose POST failed: no answer will come on the stream. */
  forget(ids: readonly JsonRpcId[]): void {
    for (const id of ids) this.#pending.delete(idKey(id));
    this.#checkAnswered();
  }

  /** Calls `then` once every request posted so far is answered (at once when none is pending). */
  whenAnswered(then: () => void): void {
    this.#whenAnswered = then;
    this.#checkAnswered();
  }

  /** The stream ended: its session is gone. */
  close(): void {
    if (this.#endpoint !== undefined) this.#sessions.unregister(this.#endpoint, this);
    this.#whenAnswered = undefined;
  }

  #checkAnswered(): void {
    if (this.#pending.size > 0 || this.#whenAnswered === undefined) return;
    const then = this.#whenAnswered;
    this.#whenAnswered = undefined;
    then();
  }
}

/** A POST to a legacy session: once its body is in, its answers are due on the session's stream. */
export class LegacyPost {
  readonly #stream: LegacyStream;
  #ids: readonly JsonRpcId[] = [];

  constructor(stream: LegacyStream) {
    this.#stream = stream;
  }

  /** The body is in, before the server could answer: these ids are due on the stream. */
  posted(ids: readonly JsonRpcId[]): void {
    this.#ids = ids;
    this.#stream.expect(ids);
  }

  /** The POST failed (no 2xx, no answer at all): nothing will come on the stream for it. */
  failed(): void {
    this.#stream.forget(this.#ids);
    this.#ids = [];
  }
}

/** The legacy streams open through one upstream, by the POST target their endpoint named. */
export class LegacySessions {
  readonly #byEndpoint = new Map<string, LegacyStream>();

  get size(): number {
    return this.#byEndpoint.size;
  }

  open(streamTarget: string): LegacyStream {
    return new LegacyStream(this, streamTarget);
  }

  /** The stream a POST to `target` answers on, if it is a legacy session's endpoint. */
  streamFor(target: string): LegacyStream | undefined {
    return this.#byEndpoint.size === 0 ? undefined : this.#byEndpoint.get(target);
  }

  register(endpoint: string, stream: LegacyStream): void {
    this.#byEndpoint.set(endpoint, stream);
  }

  unregister(endpoint: string, stream: LegacyStream): void {
    if (this.#byEndpoint.get(endpoint) === stream) this.#byEndpoint.delete(endpoint);
  }
}
