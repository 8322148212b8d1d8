// The agent's cache in front of Secrets Manager, with the semantics of aws_secretsmanager_caching:
// keyed by the exact (secretId as sent, versionId, versionStage); `ttl_seconds` freshness; an expired
// entry is revalidated with DescribeSecret and kept when its version still carries the requested
// stage; transient errors serve the stale value; errors are never cached; no background refresh.
// Pure: the clock and the backend are handed in.

import {
  AWSCURRENT,
  type BackendError,
  type BackendResult,
  type SecretsBackend,
  type SecretValue,
} from "./backend.ts";

export interface CacheSettings {
  /** 0-3600 s. 0 does not disable the cache: every request then costs a DescribeSecret. */
  readonly ttlMs: number;
  /** 1-1000 entries; the least recently written is evicted. */
  readonly size: number;
  readonly ignoreTransientErrors: boolean;
}

export interface CacheRequest {
  readonly secretId: string;
  readonly versionId?: string | undefined;
  readonly versionStage?: string | undefined;
  readonly refreshNow: boolean;
}

interface Entry {
  value: SecretValue;
  storedAt: number;
}

export class AgentCache {
  readonly #backend: SecretsBackend;
  readonly #settings: CacheSettings;
  readonly #now: () => number;
  /** Insertion order = write order, so the first key is the least recently written. */
  readonly #entries = new Map<string, Entry>();

  constructor(backend: SecretsBackend, settings: CacheSettings, now: () => number = Date.now) {
    this.#backend = backend;
    this.#settings = settings;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }

  #key(request: CacheRequest): string {
    return JSON.stringify([request.secretId, request.versionId ?? null, request.versionStage ?? null]);
  }

  #store(key: string, value: SecretValue): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, storedAt: this.#now() });
    while (this.#entries.size > this.#settings.size) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  #fetch(key: string, request: CacheRequest): BackendResult<SecretValue> {
    const result = this.#backend.getSecretValue(request.secretId, request.versionId, request.versionStage);
    if (result.ok) this.#store(key, result.value);
    return result;
  }

  get(request: CacheRequest): BackendResult<SecretValue> {
    const key = this.#key(request);
    if (request.refreshNow) return this.#fetch(key, request);
    const entry = this.#entries.get(key);
    if (!entry) return this.#fetch(key, request);
    if (this.#now() - entry.storedAt <= this.#settings.ttlMs) return { ok: true, value: entry.value };

    // The agent describes the secret by the cached ARN, not by the id as sent.
    const described = this.#backend.describeSecret(entry.value.arn);
    if (!described.ok) return this.#staleOr(entry, described.error);
    const stages = described.value.get(entry.value.versionId);
    const wanted = request.versionStage ?? (request.versionId === undefined ? AWSCURRENT : undefined);
    const stillValid = stages !== undefined && (wanted === undefined || stages.includes(wanted));
    if (stillValid) {
      entry.storedAt = this.#now();
      return { ok: true, value: entry.value };
    }
    const fetched = this.#backend.getSecretValue(request.secretId, request.versionId, request.versionStage);
    if (!fetched.ok) return this.#staleOr(entry, fetched.error);
    this.#store(key, fetched.value);
    return fetched;
  }

  /** A transient error serves the old value and writes it back (so its TTL restarts), as the agent does. */
  #staleOr(entry: Entry, error: BackendError): BackendResult<SecretValue> {
    if (error.transient && this.#settings.ignoreTransientErrors) {
      entry.storedAt = this.#now();
      return { ok: true, value: entry.value };
    }
    return { ok: false, error };
  }
}
