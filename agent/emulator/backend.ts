// The part of AWS Secrets Manager the agent talks to (GetSecretValue, DescribeSecret), backed by an
// in-memory copy of the emulator's secrets file. Failures can be injected to play a throttled,
// unreachable or denied Secrets Manager. Pure apart from the clock it is given.

import { randomUUID } from "node:crypto";

export interface SecretVersion {
  readonly versionId: string;
  readonly secretString?: string | undefined;
  readonly secretBinary?: Buffer | undefined;
  /** Staging labels, e.g. AWSCURRENT, AWSPREVIOUS, AWSPENDING. */
  stages: string[];
  /** Epoch milliseconds. */
  readonly createdMs: number;
}

export interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  versions: SecretVersion[];
}

/** What GetSecretValue returns. */
export interface SecretValue {
  readonly arn: string;
  readonly name: string;
  readonly versionId: string;
  readonly secretString?: string | undefined;
  readonly secretBinary?: Buffer | undefined;
  readonly versionStages: readonly string[];
  readonly createdMs: number;
}

/**
 * An error as the agent reports it. `status` is Secrets Manager's own (400 for client errors) or the
 * SDK-level one (502/504/500); `transient` marks what `ignore_transient_errors` serves stale over.
 */
export interface BackendError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly transient: boolean;
}

export type BackendResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: BackendError };

/** Failures the emulator can be told to produce, as seen from the agent's side of Secrets Manager. */
export type BackendFailure =
  | "throttling"
  | "access-denied"
  | "internal"
  | "unreachable"
  | "timeout"
  | "unparseable";

export const BACKEND_FAILURES: Readonly<Record<BackendFailure, BackendError>> = {
  throttling: { status: 400, code: "ThrottlingException", message: "Rate exceeded", transient: false },
  "access-denied": {
    status: 400,
    code: "AccessDeniedException",
    message: "User is not authorized to perform: secretsmanager:GetSecretValue",
    transient: false,
  },
  internal: { status: 500, code: "InternalFailure", message: "", transient: true },
  unreachable: { status: 502, code: "ConnectionError", message: "Read Error", transient: true },
  timeout: { status: 504, code: "TimeoutError", message: "Timeout", transient: true },
  unparseable: { status: 502, code: "ConnectionError", message: "Response Error", transient: true },
};

export const AWSCURRENT = "AWSCURRENT";
export const AWSPREVIOUS = "AWSPREVIOUS";
export const AWSPENDING = "AWSPENDING";

function notFound(message: string): BackendError {
  return { status: 400, code: "ResourceNotFoundException", message, transient: false };
}

export interface ApiCallCounts {
  getSecretValue: number;
  describeSecret: number;
}

export class SecretsBackend {
  #secrets: StoredSecret[];
  readonly #now: () => number;
  /** When set, every API call fails this way. */
  failure: BackendFailure | undefined;
  /** API calls per secret name: what a poller costs in Secrets Manager requests. */
  readonly calls = new Map<string, ApiCallCounts>();

  constructor(secrets: StoredSecret[], now: () => number = Date.now) {
    this.#secrets = secrets;
    this.#now = now;
  }

  get secrets(): readonly StoredSecret[] {
    return this.#secrets;
  }

  /** Replaces the whole store (the secrets file changed). */
  replaceAll(secrets: StoredSecret[]): void {
    this.#secrets = secrets;
  }

  find(secretId: string): StoredSecret | undefined {
    return this.#secrets.find((secret) => secret.name === secretId || secret.arn === secretId);
  }

  #count(secret: StoredSecret | undefined, secretId: string, api: keyof ApiCallCounts): void {
    const key = secret?.name ?? secretId;
    let counts = this.calls.get(key);
    if (!counts) {
      counts = { getSecretValue: 0, describeSecret: 0 };
      this.calls.set(key, counts);
    }
    counts[api]++;
  }

  getSecretValue(secretId: string, versionId?: string, versionStage?: string): BackendResult<SecretValue> {
    const secret = this.find(secretId);
    this.#count(secret, secretId, "getSecretValue");
    if (this.failure) return { ok: false, error: BACKEND_FAILURES[this.failure] };
    if (!secret) return { ok: false, error: notFound("Secrets Manager can't find the specified secret.") };
    let version: SecretVersion | undefined;
    if (versionId !== undefined) {
      version = secret.versions.find((v) => v.versionId === versionId);
      if (!version)
        return {
          ok: false,
          error: notFound(
            `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
          ),
        };
      if (versionStage !== undefined && !version.stages.includes(versionStage)) {
        return {
          ok: false,
          error: {
            status: 400,
            code: "InvalidRequestException",
            message: `You provided a VersionStage that is not associated to the provided VersionId.`,
            transient: false,
          },
        };
      }
    } else {
      const stage = versionStage ?? AWSCURRENT;
      version = secret.versions.find((v) => v.stages.includes(stage));
      if (!version)
        return {
          ok: false,
          error: notFound(
            `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
          ),
        };
    }
    return {
      ok: true,
      value: {
        arn: secret.arn,
        name: secret.name,
        versionId: version.versionId,
        secretString: version.secretString,
        secretBinary: version.secretBinary,
        versionStages: [...version.stages],
        createdMs: version.createdMs,
      },
    };
  }

  /** DescribeSecret's VersionIdsToStages. */
  describeSecret(secretId: string): BackendResult<ReadonlyMap<string, readonly string[]>> {
    const secret = this.find(secretId);
    this.#count(secret, secretId, "describeSecret");
    if (this.failure) return { ok: false, error: BACKEND_FAILURES[this.failure] };
    if (!secret) return { ok: false, error: notFound("Secrets Manager can't find the specified secret.") };
    return { ok: true, value: new Map(secret.versions.map((v) => [v.versionId, [...v.stages]])) };
  }

  /**
   * A completed rotation: a new version becomes AWSCURRENT, the old current becomes AWSPREVIOUS,
   * and the old previous loses its label (a version left with no label is deprecated and dropped).
   */
  rotate(secretId: string, newValue: string = `rotated-${randomUUID()}`): SecretVersion {
    const secret = this.find(secretId);
    if (!secret) throw new Error(`no secret named ${secretId}`);
    for (const version of secret.versions) {
      version.stages = version.stages.filter((stage) => stage !== AWSPREVIOUS && stage !== AWSPENDING);
      if (version.stages.includes(AWSCURRENT)) {
        version.stages = version.stages.filter((stage) => stage !== AWSCURRENT);
        version.stages.push(AWSPREVIOUS);
      }
    }
    const next: SecretVersion = {
      versionId: randomUUID(),
      secretString: newValue,
      stages: [AWSCURRENT],
      createdMs: this.#now(),
    };
    secret.versions = [...secret.versions.filter((v) => v.stages.length > 0), next];
    return next;
  }
}
