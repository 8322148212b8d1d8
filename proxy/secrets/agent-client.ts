// The sidecar's client of the AWS Secrets Manager Agent: one GET per secret and stage, over a
// keep-alive connection, every failure classified by kind. It never puts a secret value into an
// error, a log or a metric.
//
// The agent cuts every connection 61 s after accepting it, busy or idle, with no response: a request
// that lands on a reused socket at that moment fails with a reset, so it is retried once on a new
// connection (it is a GET; nothing is lost by asking twice).

import { Pool } from "../deps.ts";
import { classifyTransportError, isTimeout } from "../http/transport-errors.ts";

export interface AgentSecret {
  readonly arn: string | null;
  readonly name: string | null;
  readonly versionId: string;
  readonly versionStages: readonly string[];
  readonly secretString: string | undefined;
  readonly secretBinary: Buffer | undefined;
}

export type AgentFailureKind =
  /** Nothing listens (agent not started, crashed) or the connection broke twice. */
  | "unreachable"
  /** No answer within --secrets-agent-timeout (agent or Secrets Manager slow). */
  | "timeout"
  /** 403 Bad Token: the SSRF token does not match the agent's. */
  | "bad_token"
  /** 429: the agent's max_conn is exhausted. */
  | "too_many_connections"
  /** Secrets Manager throttled the agent (400 ThrottlingException). */
  | "throttled"
  /** The task role may not read the secret (400 AccessDeniedException). */
  | "access_denied"
  /** No such secret or version (400 ResourceNotFoundException). */
  | "not_found"
  /** Any other 4xx: a malformed request or a Secrets Manager client error. */
  | "rejected"
  /** 5xx: Secrets Manager unreachable or failing behind the agent. */
  | "server_error"
  /** A 200 whose body is not the agent's JSON. */
  | "bad_response";

export type AgentResult =
  | { readonly ok: true; readonly secret: AgentSecret }
  | {
      readonly ok: false;
      readonly kind: AgentFailureKind;
      readonly status?: number;
      readonly detail: string;
    };

export interface AgentClientSettings {
  readonly agent: URL;
  /** Read on each request: a file:// token may be re-read after a 403 (agent restarted). */
  readonly token: () => string;
  readonly timeoutMs: number;
}

export interface AgentRequest {
  readonly secretId: string;
  readonly versionStage?: string | undefined;
  readonly refreshNow?: boolean | undefined;
}

function classifyBackendError(status: number, body: string): { kind: AgentFailureKind; detail: string } {
  let type = "";
  try {
    // The agent writes `{"__type":"X", "message":"..."}` by string formatting; the message is an
    // AWS error message, not a secret value, but only the type is kept.
    type = String((JSON.parse(body) as { __type?: unknown }).__type ?? "");
  } catch {
    type = body.length <= 64 ? body : "";
  }
  const detail = type ? `${status} ${type}` : String(status);
  if (status === 403) return { kind: "bad_token", detail };
  if (status === 429) return { kind: "too_many_connections", detail };
  if (status >= 500) return { kind: "server_error", detail };
  if (type === "ThrottlingException") return { kind: "throttled", detail };
  if (type === "AccessDeniedException") return { kind: "access_denied", detail };
  if (type === "ResourceNotFoundException") return { kind: "not_found", detail };
  return { kind: "rejected", detail };
}

function parseSecret(body: string): AgentSecret | undefined {
  try {
    const value = JSON.parse(body) as Record<string, unknown>;
    if (typeof value.VersionId !== "string") return undefined;
    return {
      arn: typeof value.ARN === "string" ? value.ARN : null,
      name: typeof value.Name === "string" ? value.Name : null,
      versionId: value.VersionId,
      versionStages: Array.isArray(value.VersionStages) ? (value.VersionStages as string[]) : [],
      secretString: typeof value.SecretString === "string" ? value.SecretString : undefined,
      secretBinary:
        typeof value.SecretBinary === "string" ? Buffer.from(value.SecretBinary, "base64") : undefined,
    };
  } catch {
    return undefined;
  }
}

export class AgentClient {
  readonly #settings: AgentClientSettings;
  readonly #pool: Pool;

  constructor(settings: AgentClientSettings) {
    this.#settings = settings;
    // Few connections: the agent counts every open one against its max_conn.
    this.#pool = new Pool(settings.agent.origin, {
      connections: 4,
      pipelining: 1,
      connect: { timeout: settings.timeoutMs },
      // Below the agent's 61 s cut, so an idle socket is usually retired before the agent drops it.
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 30_000,
    });
  }

  async get(request: AgentRequest): Promise<AgentResult> {
    const first = await this.#attempt(request);
    if (!first.ok && first.retry)
      return this.#attempt(request).then(({ retry: _retry, ...result }) => result);
    const { retry: _retry, ...result } = first;
    return result;
  }

  async #attempt(request: AgentRequest): Promise<AgentResult & { retry?: boolean }> {
    const query = new URLSearchParams({ secretId: request.secretId });
    if (request.versionStage !== undefined) query.set("versionStage", request.versionStage);
    if (request.refreshNow) query.set("refreshNow", "true");
    try {
      const response = await this.#pool.request({
        path: `/secretsmanager/get?${query}`,
        method: "GET",
        headers: { "x-aws-parameters-secrets-token": this.#settings.token() },
        headersTimeout: this.#settings.timeoutMs,
        bodyTimeout: this.#settings.timeoutMs,
        signal: AbortSignal.timeout(this.#settings.timeoutMs),
      });
      const body = await response.body.text();
      if (response.statusCode === 200) {
        const secret = parseSecret(body);
        if (!secret)
          return { ok: false, kind: "bad_response", status: 200, detail: "200 without the agent's JSON" };
        return { ok: true, secret };
      }
      const { kind, detail } = classifyBackendError(response.statusCode, body);
      return { ok: false, kind, status: response.statusCode, detail };
    } catch (error) {
      const { failure, code } = classifyTransportError(error);
      if (isTimeout(failure)) {
        return { ok: false, kind: "timeout", detail: `no answer within ${this.#settings.timeoutMs} ms` };
      }
      if (failure === "refused")
        return {
          ok: false,
          kind: "unreachable",
          detail: `connection refused by ${this.#settings.agent.host}`,
        };
      return {
        ok: false,
        kind: "unreachable",
        detail: code || (error as Error).name,
        // A connection the agent cut (it does, 61 s after accepting each one): worth one more try.
        retry: failure === "connection_lost",
      };
    }
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
