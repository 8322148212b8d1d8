// An emulator of the AWS Secrets Manager Agent's HTTP interface (crate 2.0.x), faithful in every
// point of ../shared/docs/secrets-manager-agent.md: the sidecar is only as good against the real
// agent as this is faithful, so it is a product part with its own tests (test/agent-emulator.test.ts).
//
// What it is not: it reads secrets from a local file instead of Secrets Manager, and it has knobs
// the agent lacks (failure injection, the connection lifetime) for tests.

import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { AgentCache, type CacheSettings } from "./agent-cache.ts";
import {
  type BackendError,
  type BackendFailure,
  SecretsBackend,
  type SecretValue,
  type StoredSecret,
} from "./backend.ts";

export interface EmulatorSettings {
  /** 0 = any free port. The agent refuses 1-1023. */
  readonly port: number;
  /** The SSRF token every request but /ping must carry. */
  readonly token: string;
  /** Header names that may carry the token (case-insensitive). */
  readonly ssrfHeaders: readonly string[];
  readonly pathPrefix: string;
  readonly maxConn: number;
  readonly cache: CacheSettings;
  /** The agent cuts every connection this long after accepting it (61 s; a knob for tests). */
  readonly connectionLifetimeMs: number;
}

export const DEFAULT_EMULATOR_SETTINGS: Omit<EmulatorSettings, "token"> = {
  port: 2773,
  ssrfHeaders: ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"],
  pathPrefix: "/v1/",
  maxConn: 800,
  cache: { ttlMs: 300_000, size: 1000, ignoreTransientErrors: true },
  connectionLifetimeMs: 61_000,
};

/** Failures of the agent itself (as opposed to Secrets Manager behind it). */
export interface AgentFaults {
  /** Delay every answer by this long. */
  slowMs: number;
  /** Drop the connection of the next N requests without answering (the 61 s cut, on demand). */
  cutNextRequests: number;
}

const QUERY_PARAMS = new Set(["secretId", "versionId", "versionStage", "refreshNow"]);
const PATH_PARAMS = new Set(["versionId", "versionStage", "refreshNow"]);

interface ParsedRequest {
  readonly secretId: string;
  readonly versionId: string | undefined;
  readonly versionStage: string | undefined;
  readonly refreshNow: boolean;
}

class BadRequest extends Error {}

/** `true`/`1`/`false`/`0`, any case; anything else (the empty value too) is an error. */
function parseRefreshNow(value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === "true" || lower === "1") return true;
  if (lower === "false" || lower === "0") return false;
  throw new BadRequest("invalid refreshNow value");
}

/**
 * Form-decoded names and values (`+` is a space), case-sensitive names, the last duplicate wins,
 * checked in order so that the first error wins (an unknown name before a missing secretId), as
 * the agent's url::Url::query_pairs loop does.
 */
function readParams(query: string, allowed: ReadonlySet<string>): Map<string, string> {
  const params = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(query)) {
    if (!allowed.has(name)) throw new BadRequest(`unknown parameter: ${name}`);
    if (name === "refreshNow") parseRefreshNow(value);
    params.set(name, value);
  }
  return params;
}

/** The success body, byte for byte: compact JSON in the agent's key order, CreatedDate a string. */
export function successBody(value: SecretValue): string {
  const body: Record<string, unknown> = { ARN: value.arn, Name: value.name, VersionId: value.versionId };
  if (value.secretString !== undefined) body.SecretString = value.secretString;
  if (value.secretBinary !== undefined) body.SecretBinary = value.secretBinary.toString("base64");
  body.VersionStages = value.versionStages;
  // Epoch seconds with a fraction; whole seconds print with no decimal point.
  body.CreatedDate = value.createdMs ? String(value.createdMs / 1000) : null;
  return JSON.stringify(body);
}

/** Built by string formatting in the agent: one space after the comma, the message not escaped. */
export function backendErrorBody(error: BackendError): string {
  if (error.message === "" || error.code === "InternalFailure") return '{"__type":"InternalFailure"}';
  return `{"__type":"${error.code}", "message":"${error.message}"}`;
}

export class AgentEmulator {
  readonly backend: SecretsBackend;
  readonly cache: AgentCache;
  readonly faults: AgentFaults = { slowMs: 0, cutNextRequests: 0 };
  settings: EmulatorSettings;
  /** Requests answered, by path kind, for tests and for "requests per minute per secret". */
  readonly requests = new Map<string, number>();
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #port: number;
  #source: (() => StoredSecret[] | undefined) | undefined;

  constructor(secrets: StoredSecret[], settings: EmulatorSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.#port = settings.port;
    this.backend = new SecretsBackend(secrets, now);
    this.cache = new AgentCache(this.backend, settings.cache, now);
  }

  get url(): URL {
    return new URL(`http://127.0.0.1:${this.#port}`);
  }

  get listening(): boolean {
    return this.#server?.listening ?? false;
  }

  /** IPv4 loopback only, like the agent. Restarting after stop() reuses the same port. */
  async start(): Promise<URL> {
    const server = createServer(this.#onRequest);
    server.on("connection", this.#onConnection);
    // hyper's defaults: no request timeout of its own; the 61 s cut bounds every connection.
    server.requestTimeout = 0;
    server.keepAliveTimeout = this.settings.connectionLifetimeMs;
    server.listen(this.#port, "127.0.0.1");
    await once(server, "listening");
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
    return this.url;
  }

  /** The agent is down: the port refuses connections and open ones are dropped. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Secrets Manager behind the agent fails this way (undefined: it works again). */
  failBackend(failure: BackendFailure | undefined): void {
    this.backend.failure = failure;
  }

  /**
   * Before every lookup, asks `changed` for Secrets Manager's content (new secrets, or undefined
   * when unchanged): a file written before a request is then what that request sees. The cache is
   * left alone, as a change in Secrets Manager leaves the agent's cache alone.
   */
  follow(changed: () => StoredSecret[] | undefined): void {
    this.#source = changed;
  }

  /** Rotates a secret in Secrets Manager; the agent sees it after its cache TTL or with refreshNow. */
  rotate(secretId: string, newValue?: string): void {
    this.backend.rotate(secretId, newValue);
  }

  #onConnection = (socket: Socket): void => {
    this.#sockets.add(socket);
    // Counted once, when accepted (the agent's semaphore): every request on this connection gets
    // 429 when it was accepted over the limit; /ping has two spare places.
    const open = this.#sockets.size;
    (socket as SocketState).overLimit = open > this.settings.maxConn;
    (socket as SocketState).overPingLimit = open > this.settings.maxConn + 2;
    const cut = setTimeout(() => socket.destroy(), this.settings.connectionLifetimeMs);
    cut.unref();
    socket.once("close", () => {
      clearTimeout(cut);
      this.#sockets.delete(socket);
    });
  };

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.faults.cutNextRequests > 0) {
      this.faults.cutNextRequests--;
      req.socket.destroy();
      return;
    }
    const { status, body } = this.#route(req);
    const kind = status === 200 ? "ok" : String(status);
    this.requests.set(kind, (this.requests.get(kind) ?? 0) + 1);
    const send = () => {
      if (res.destroyed) return;
      // hyper's headers: content-length and date, no Content-Type, no Connection/Keep-Alive unless
      // the client asked to close. removeHeader stops Node adding its keep-alive headers.
      if (!/\bclose\b/i.test(String(req.headers.connection ?? ""))) res.removeHeader("connection");
      res.writeHead(status, { "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    if (this.faults.slowMs > 0) setTimeout(send, this.faults.slowMs);
    else send();
  };

  #route(req: IncomingMessage): { status: number; body: string } {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q === -1 ? raw : raw.slice(0, q);
    const query = q === -1 ? "" : raw.slice(q + 1);
    const socket = req.socket as SocketState;

    // 1. Connection limit.
    if (path === "/ping" ? socket.overPingLimit : socket.overLimit)
      return { status: 429, body: "Connection limit exceeded" };
    if (path !== "/ping") {
      // 2. SSRF: any X-Forwarded-For is refused before the token is looked at.
      if (req.headers["x-forwarded-for"] !== undefined) return { status: 400, body: "Forwarded" };
      if (!this.#hasToken(req)) return { status: 403, body: "Bad Token" };
    }
    // 3. Method.
    if (req.method !== "GET") return { status: 405, body: "Not allowed" };
    // 4. Routing on the raw path.
    if (path === "/ping") return { status: 200, body: "healthy" };
    try {
      if (path === "/secretsmanager/get") {
        const params = readParams(query, QUERY_PARAMS);
        const secretId = params.get("secretId");
        if (!secretId) throw new BadRequest("missing parameter secretId");
        return this.#lookup({ secretId, ...this.#versionParams(params) });
      }
      if (path.startsWith(this.settings.pathPrefix)) {
        const params = readParams(query, PATH_PARAMS);
        // Routed on the raw path, but the id is cut from the URL-normalised path (dot segments
        // removed, {}"<> and the like percent-encoded) and never percent-decoded: what the url crate
        // and WHATWG URL parsing both do.
        const normalised = new URL(path, "http://localhost").pathname;
        const secretId = normalised.slice(this.settings.pathPrefix.length);
        if (!secretId) throw new BadRequest("missing secret ID");
        return this.#lookup({ secretId, ...this.#versionParams(params) });
      }
    } catch (error) {
      if (error instanceof BadRequest) return { status: 400, body: error.message };
      throw error;
    }
    return { status: 404, body: "Not found" };
  }

  #versionParams(params: Map<string, string>): Omit<ParsedRequest, "secretId"> {
    const refresh = params.get("refreshNow");
    return {
      versionId: params.get("versionId"),
      versionStage: params.get("versionStage"),
      refreshNow: refresh === undefined ? false : parseRefreshNow(refresh),
    };
  }

  #hasToken(req: IncomingMessage): boolean {
    const raw = req.rawHeaders;
    for (const header of this.settings.ssrfHeaders) {
      const name = header.toLowerCase();
      // The first value of each configured header, compared byte for byte (the agent indexes its
      // HeaderMap, which yields the first value). An empty token is accepted, as the agent does.
      for (let i = 0; i < raw.length; i += 2) {
        if ((raw[i] as string).toLowerCase() !== name) continue;
        if (raw[i + 1] === this.settings.token) return true;
        break;
      }
    }
    return false;
  }

  #lookup(request: ParsedRequest): { status: number; body: string } {
    const changed = this.#source?.();
    if (changed) this.backend.replaceAll(changed);
    const result = this.cache.get(request);
    if (result.ok) return { status: 200, body: successBody(result.value) };
    return { status: result.error.status, body: backendErrorBody(result.error) };
  }
}

interface SocketState extends Socket {
  overLimit?: boolean;
  overPingLimit?: boolean;
}
