// What the sidecar knows about one secret: its current version, the previous one (for API keys
// that clients may still present during a rotation), when it was last refreshed, and how refreshes
// failed. Pure: times are handed in; nothing here does I/O.

import { shortHash } from "../telemetry/short-hash.ts";
import type { AgentFailureKind, AgentSecret } from "./agent-client.ts";

export interface LoadedVersion {
  readonly versionId: string;
  readonly secretString: string | undefined;
  readonly secretBinary: Buffer | undefined;
  /** When the sidecar first saw this version. */
  readonly since: number;
}

/** A short, stable label for a VersionId in logs and metrics. */
export function versionLabel(versionId: string): string {
  return shortHash(versionId);
}

/** The agent's largest ttl_seconds: no AWSPREVIOUS it serves can be staler than this. */
export const PRIOR_CURRENT_MAX_MS = 3_600_000;

export type Resolved =
  | { readonly ok: true; readonly value: string | Buffer }
  | { readonly ok: false; readonly reason: string };

/**
 * The delivered value of a version: the whole SecretString, one key of it when it is a JSON
 * object, or the binary. Reasons never quote the value.
 */
export function resolveValue(
  version: LoadedVersion,
  jsonKey: string | undefined,
  wantText: boolean,
): Resolved {
  if (jsonKey === undefined) {
    if (version.secretString !== undefined) return { ok: true, value: version.secretString };
    if (version.secretBinary !== undefined) {
      if (wantText) return { ok: false, reason: "is a binary secret: deliver it with --secret-file" };
      return { ok: true, value: version.secretBinary };
    }
    return { ok: false, reason: "has no value" };
  }
  if (version.secretString === undefined)
    return { ok: false, reason: `is not a JSON SecretString (wanted key "${jsonKey}")` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(version.secretString);
  } catch {
    return { ok: false, reason: `is not JSON (wanted key "${jsonKey}")` };
  }
  if (typeof parsed !== "object" || parsed === null || !(jsonKey in parsed)) {
    return { ok: false, reason: `has no JSON key "${jsonKey}"` };
  }
  const value = (parsed as Record<string, unknown>)[jsonKey];
  if (typeof value === "string") return { ok: true, value };
  if (typeof value === "number" || typeof value === "boolean") return { ok: true, value: String(value) };
  return { ok: false, reason: `JSON key "${jsonKey}" is not a string, number or boolean` };
}

export class TrackedSecret {
  readonly secretId: string;
  /** Auth secrets also follow AWSPREVIOUS: clients may present it during a rotation. */
  readonly followsPrevious: boolean;
  current: LoadedVersion | undefined;
  /** The agent's AWSPREVIOUS, when it has one. */
  previous: LoadedVersion | undefined;
  /**
   * The version that was current before the last change: still valid for clients until the agent's
   * AWSPREVIOUS (which it may serve from its cache for up to its TTL) has caught up.
   */
  priorCurrent: LoadedVersion | undefined;
  lastSuccessAt: number | undefined;
  lastAttemptAt: number | undefined;
  consecutiveFailures = 0;
  lastFailure: { readonly kind: AgentFailureKind; readonly detail: string; readonly at: number } | undefined;
  readonly failures = new Map<AgentFailureKind, number>();
  /** The agent's AWSPREVIOUS when the current version last changed (to see it move on). */
  #previousAtChange: string | undefined;
  /** The sequence number of the fetch whose AWSCURRENT was applied last. */
  #appliedSeq = 0;
  /** When the last on-demand refreshNow went out (rate limit). */
  lastOnDemandAt: number | undefined;
  onDemandCount = 0;

  constructor(secretId: string, followsPrevious: boolean) {
    this.secretId = secretId;
    this.followsPrevious = followsPrevious;
  }

  get loaded(): boolean {
    return this.current !== undefined;
  }

  /**
   * Applies a fetched AWSCURRENT; true when it is a different version (detected by VersionId).
   * `seq` orders fetches by when they started: an answer that started before the one applied last
   * (a routine poll overtaken by an on-demand refreshNow) is not applied, so it cannot roll back.
   */
  applyCurrent(secret: AgentSecret, now: number, seq = this.#appliedSeq + 1): boolean {
    this.lastAttemptAt = now;
    this.lastSuccessAt = now;
    this.consecutiveFailures = 0;
    if (seq < this.#appliedSeq) return false;
    this.#appliedSeq = seq;
    if (this.current?.versionId === secret.versionId) return false;
    if (this.current !== undefined) {
      this.priorCurrent = this.current;
      this.#previousAtChange = this.previous?.versionId;
    }
    this.current = {
      versionId: secret.versionId,
      secretString: secret.secretString,
      secretBinary: secret.secretBinary,
      since: now,
    };
    if (this.previous?.versionId === secret.versionId) this.previous = undefined;
    return true;
  }

  /**
   * Applies a fetched AWSPREVIOUS (or its absence); true when the accepted set changed. It does not
   * count as a refresh of the secret: only AWSCURRENT does (for --max-staleness and the logs).
   */
  applyPrevious(secret: AgentSecret | undefined, now: number): boolean {
    const before = this.acceptedVersions()
      .map((v) => v.versionId)
      .join();
    if (secret === undefined || secret.versionId === this.current?.versionId) {
      this.previous = undefined;
    } else if (this.previous?.versionId !== secret.versionId) {
      this.previous = {
        versionId: secret.versionId,
        secretString: secret.secretString,
        secretBinary: secret.secretBinary,
        since: now,
      };
    }
    // The prior current stays accepted until the agent's AWSPREVIOUS has caught up with the change
    // (its cache may serve the old AWSPREVIOUS for up to its TTL): once AWSPREVIOUS has moved on
    // from what it was at the change, it is authoritative and the prior current goes (it is either
    // AWSPREVIOUS itself, or was rotated out twice). PRIOR_CURRENT_MAX_MS bounds it in any case.
    if (this.priorCurrent !== undefined) {
      const caughtUp = this.previous?.versionId !== this.#previousAtChange;
      const expired = now - (this.current?.since ?? now) > PRIOR_CURRENT_MAX_MS;
      if (caughtUp || expired) this.priorCurrent = undefined;
    }
    return (
      before !==
      this.acceptedVersions()
        .map((v) => v.versionId)
        .join()
    );
  }

  /** A failed fetch. Only AWSCURRENT failures make the secret stale; AWSPREVIOUS ones are counted. */
  recordFailure(
    kind: AgentFailureKind,
    detail: string,
    now: number,
    stage: "current" | "previous" = "current",
  ): void {
    this.failures.set(kind, (this.failures.get(kind) ?? 0) + 1);
    if (stage === "previous") return;
    this.lastAttemptAt = now;
    this.consecutiveFailures++;
    this.lastFailure = { kind, detail, at: now };
  }

  /** Versions a client may present: current, the agent's previous, and the prior current. */
  acceptedVersions(): LoadedVersion[] {
    const versions: LoadedVersion[] = [];
    for (const version of [this.current, this.previous, this.priorCurrent]) {
      if (version !== undefined && !versions.some((v) => v.versionId === version.versionId))
        versions.push(version);
    }
    return versions;
  }
}
