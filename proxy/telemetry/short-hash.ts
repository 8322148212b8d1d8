import { createHash } from "node:crypto";

/**
 * The first 12 hex digits of a value's SHA-256: a stable label for something that must not appear
 * itself in logs and metrics (a session id, a secret's VersionId), yet must be told apart.
 */
export function shortHash(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 12);
}
