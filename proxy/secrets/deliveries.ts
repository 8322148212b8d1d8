// What the secrets' current versions make of each delivery: the API keys accepted, the session
// token keys, the headers injected, the stdio children's variables, and every problem with them (for
// /ready). Pure: the runtime (runtime.ts) fetches the versions and applies the result.

import { createHash } from "node:crypto";
import { deriveSessionKey, type SessionKey } from "../sessions/session-token.ts";
import type { SecretsSettings } from "./runtime.ts";
import { resolveValue, type TrackedSecret } from "./secret-state.ts";

const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A session secret shorter than this is no key (Secrets Manager's random passwords are 32). */
const MIN_SESSION_SECRET_CHARS = 16;

export function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

export interface Deliveries {
  /** Digests of every API key a client may present. */
  readonly acceptedKeys: Buffer[];
  /** Session token keys, the current version's first. */
  readonly sessionKeys: SessionKey[];
  readonly headers: string[];
  readonly env: Record<string, string>;
  readonly problems: string[];
}

export function computeDeliveries(
  settings: SecretsSettings,
  tracked: (secretId: string) => TrackedSecret | undefined,
): Deliveries {
  const problems: string[] = [];
  const acceptedKeys: Buffer[] = [];
  const auth = settings.authSecret;
  const authSecret = auth && tracked(auth.secretId);
  if (auth && authSecret) {
    for (const version of authSecret.acceptedVersions()) {
      const resolved = resolveValue(version, auth.jsonKey, true);
      if (resolved.ok) acceptedKeys.push(digest(resolved.value as string));
      else if (version === authSecret.current)
        problems.push(`--auth-secret ${auth.label} ${resolved.reason}`);
    }
  }
  const sessionKeys: SessionKey[] = [];
  const session = settings.sessionSecret;
  const sessionSecret = session && tracked(session.secretId);
  if (session && sessionSecret) {
    for (const version of sessionSecret.acceptedVersions()) {
      const resolved = resolveValue(version, session.jsonKey, true);
      const value = resolved.ok ? (resolved.value as string) : "";
      if (resolved.ok && value.length >= MIN_SESSION_SECRET_CHARS) sessionKeys.push(deriveSessionKey(value));
      else if (version === sessionSecret.current)
        problems.push(
          `--session-secret ${session.label} ${resolved.ok ? `is shorter than ${MIN_SESSION_SECRET_CHARS} characters` : resolved.reason}`,
        );
    }
  }
  const headers: string[] = [];
  for (const delivery of settings.injectHeaders) {
    const current = tracked(delivery.ref.secretId)?.current;
    if (!current) continue;
    const resolved = resolveValue(current, delivery.ref.jsonKey, true);
    if (!resolved.ok)
      problems.push(`--inject-header ${delivery.header}=${delivery.ref.label} ${resolved.reason}`);
    else if (!HEADER_VALUE.test(resolved.value as string))
      problems.push(`--inject-header ${delivery.header}: the value is not a valid header value`);
    else headers.push(delivery.header, resolved.value as string);
  }
  const env: Record<string, string> = {};
  for (const delivery of settings.secretEnv ?? []) {
    const current = tracked(delivery.ref.secretId)?.current;
    if (!current) continue;
    const resolved = resolveValue(current, delivery.ref.jsonKey, true);
    if (!resolved.ok) problems.push(`--secret-env ${delivery.name}=${delivery.ref.label} ${resolved.reason}`);
    else if ((resolved.value as string).includes("\0"))
      problems.push(`--secret-env ${delivery.name}: the value holds a NUL byte`);
    else env[delivery.name] = resolved.value as string;
  }
  return { acceptedKeys, sessionKeys, headers, env, problems };
}
