// Session tokens: what a client holds as its Mcp-Session-Id when --session-routing is on. A token is
// the owner-encoded session (which task owns it, the upstream's own id, how to re-create it), sealed
// with AES-256-GCM so that any task of the deployment can read it and nobody else can read or forge
// it. No shared store: the token is the state. Pure (node:crypto only).
//
// Layout, base64url (visible ASCII, as Mcp-Session-Id requires):
//   version (1 byte) | key id (4) | nonce (12) | ciphertext | GCM tag (16)
// The version byte and key id are the GCM additional data, so neither can be swapped. The key id,
// in the clear, lets a task tell a key it has not learnt yet (a rotation it has not polled: worth an
// on-demand refresh) from a forged or damaged token (not worth one).

import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";

const VERSION = 1;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
/** Shortest possible token: header, nonce, tag, and at least `{}`. */
const MIN_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES + 2;
/**
 * Longest token read: far above any real one (about 400 characters with an SDK client's initialize
 * params), far below a header limit; anything longer is not decrypted at all.
 */
export const MAX_TOKEN_CHARS = 8192;
/**
 * Initialize params larger than this are not sealed into the token: the token stays a header of
 * sensible size, and such a session is routed but cannot be replayed (its client re-initializes).
 */
export const MAX_SEALED_PARAMS_BYTES = 4096;

/** What a token says about its session. */
export interface SessionClaims {
  /** The owner's advertised URL (its sidecar), e.g. http://10.0.1.23:8080. */
  readonly owner: string;
  /** The owner's instance id: a new task reusing an old address is not the owner. */
  readonly instance: string;
  /** The upstream MCP server's own Mcp-Session-Id. */
  readonly upstreamSession: string;
  /** The client's initialize params, to re-create the session elsewhere (absent when too large). */
  readonly initialize: Record<string, unknown> | undefined;
  /** When the session was created (ms since the epoch). */
  readonly issuedAt: number;
}

export interface SessionKey {
  /** First bytes of SHA-256 over the key: names it in tokens, reveals nothing of it. */
  readonly id: Buffer;
  readonly key: Buffer;
}

/**
 * The AES key of a session secret's value. HKDF (RFC 5869) rather than the value itself: any random
 * string of enough entropy works as the secret (Secrets Manager's random passwords are 32 printable
 * characters), and the key is bound to this one use.
 */
export function deriveSessionKey(secret: string): SessionKey {
  const key = Buffer.from(hkdfSync("sha256", secret, "mcp-sidecar", "session-token aes-256-gcm v1", 32));
  return { id: createHash("sha256").update(key).digest().subarray(0, KEY_ID_BYTES), key };
}

/** Seals claims with `key`: a fresh random nonce per token (GCM's 96-bit nonce, NIST SP 800-38D). */
export function sealSessionToken(key: SessionKey, claims: SessionClaims): string {
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = VERSION;
  key.id.copy(header, 1);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key.key, nonce);
  cipher.setAAD(header);
  const plain = Buffer.from(
    JSON.stringify({
      o: claims.owner,
      i: claims.instance,
      s: claims.upstreamSession,
      p: claims.initialize,
      t: claims.issuedAt,
    }),
  );
  const sealed = Buffer.concat([header, nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return sealed.toString("base64url");
}

export type OpenedToken =
  | { readonly ok: true; readonly claims: SessionClaims; readonly key: SessionKey }
  /** Not a token of this format at all (an upstream's raw id, junk, too long). */
  | { readonly ok: false; readonly reason: "malformed" }
  /** Well formed, but sealed with a key this task does not hold (a rotation not polled yet, or foreign). */
  | { readonly ok: false; readonly reason: "unknown_key"; readonly keyId: string }
  /** Sealed with a known key id but fails authentication: altered, or forged. */
  | { readonly ok: false; readonly reason: "tampered" };

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Opens a token with whichever of `keys` (current first, then previous) its key id names. */
export function openSessionToken(keys: readonly SessionKey[], token: string): OpenedToken {
  if (token.length < 8 || token.length > MAX_TOKEN_CHARS || !BASE64URL.test(token))
    return { ok: false, reason: "malformed" };
  const bytes = Buffer.from(token, "base64url");
  if (bytes.length < MIN_BYTES || bytes[0] !== VERSION) return { ok: false, reason: "malformed" };
  const header = bytes.subarray(0, HEADER_BYTES);
  const keyId = header.subarray(1);
  const key = keys.find((candidate) => candidate.id.equals(keyId));
  if (key === undefined) return { ok: false, reason: "unknown_key", keyId: keyId.toString("hex") };
  const nonce = bytes.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
  const ciphertext = bytes.subarray(HEADER_BYTES + NONCE_BYTES, bytes.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key.key, nonce);
  decipher.setAAD(header);
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return { ok: false, reason: "tampered" };
  }
  const claims = claimsOf(plain);
  // Authentic but not claims: only a task of another version could seal that; not ours to read.
  if (claims === undefined) return { ok: false, reason: "malformed" };
  return { ok: true, claims, key };
}

function claimsOf(plain: Buffer): SessionClaims | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(plain.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const { o, i, s, p, t } = raw as Record<string, unknown>;
  if (typeof o !== "string" || typeof i !== "string" || typeof s !== "string" || typeof t !== "number")
    return undefined;
  const initialize =
    typeof p === "object" && p !== null && !Array.isArray(p) ? (p as Record<string, unknown>) : undefined;
  return { owner: o, instance: i, upstreamSession: s, initialize, issuedAt: t };
}

/** The params of an initialize request body, when it is one and small enough to seal. */
export function initializeParamsOf(body: Buffer | undefined): Record<string, unknown> | undefined {
  if (body === undefined || body.length > MAX_SEALED_PARAMS_BYTES + 256) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const { method, params } = message as Record<string, unknown>;
  if (method !== "initialize" || typeof params !== "object" || params === null || Array.isArray(params))
    return undefined;
  if (Buffer.byteLength(JSON.stringify(params)) > MAX_SEALED_PARAMS_BYTES) return undefined;
  return params as Record<string, unknown>;
}
