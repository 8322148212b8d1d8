// How deliveries name their secret: `SECRET_ID[#key]`, `Name=SECRET_ID[#key]`,
// `/path=SECRET_ID[#key]`. Pure parsers; each problem is a message naming what is wrong (the config
// module prefixes the flag).

import { isAbsolute } from "node:path";

export class InvalidSecretSpec extends Error {}

export interface SecretRef {
  /** A secret name or ARN, passed to the agent as written. */
  readonly secretId: string;
  /** A key of the secret's JSON SecretString, when only that key is wanted. */
  readonly jsonKey: string | undefined;
  /** As written, for logs and readiness reasons (never a value). */
  readonly label: string;
}

export interface HeaderDelivery {
  readonly header: string;
  readonly ref: SecretRef;
}

export interface FileDelivery {
  readonly path: string;
  readonly ref: SecretRef;
}

// Secrets Manager names: letters, digits and /_+=.@- ; ARNs add the colon-separated prefix.
const SECRET_ID = /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FORBIDDEN_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
  "content-type",
  "proxy-authorization",
  "proxy-connection",
]);

export function parseSecretRef(raw: string): SecretRef {
  const hash = raw.indexOf("#");
  const secretId = hash === -1 ? raw : raw.slice(0, hash);
  const jsonKey = hash === -1 ? undefined : raw.slice(hash + 1);
  if (!SECRET_ID.test(secretId)) {
    throw new InvalidSecretSpec(`"${raw}": "${secretId}" is not a secret name or ARN (SECRET_ID[#key])`);
  }
  if (jsonKey !== undefined && jsonKey === "")
    throw new InvalidSecretSpec(`"${raw}": empty JSON key after #`);
  return { secretId, jsonKey, label: raw };
}

function splitAssignment(raw: string, left: string): [string, string] {
  const eq = raw.indexOf("=");
  if (eq <= 0 || eq === raw.length - 1)
    throw new InvalidSecretSpec(`"${raw}" is not ${left}=SECRET_ID[#key]`);
  return [raw.slice(0, eq), raw.slice(eq + 1)];
}

export interface EnvDelivery {
  readonly name: string;
  readonly ref: SecretRef;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `NAME=SECRET_ID[#key]`: an environment variable of each stdio child. */
export function parseEnvDelivery(raw: string): EnvDelivery {
  const [name, ref] = splitAssignment(raw, "NAME");
  if (!ENV_NAME.test(name))
    throw new InvalidSecretSpec(`"${raw}": "${name}" is not an environment variable name`);
  return { name, ref: parseSecretRef(ref) };
}

export function parseHeaderDelivery(raw: string): HeaderDelivery {
  const [header, ref] = splitAssignment(raw, "Header-Name");
  if (!HEADER_NAME.test(header)) throw new InvalidSecretSpec(`"${raw}": "${header}" is not a header name`);
  if (FORBIDDEN_HEADERS.has(header.toLowerCase())) {
    throw new InvalidSecretSpec(`"${raw}": ${header} is managed by HTTP itself and cannot carry a secret`);
  }
  return { header, ref: parseSecretRef(ref) };
}

export function parseFileDelivery(raw: string): FileDelivery {
  const [path, ref] = splitAssignment(raw, "/absolute/path");
  if (!isAbsolute(path)) throw new InvalidSecretSpec(`"${raw}": ${path} is not an absolute path`);
  if (path.endsWith("/")) throw new InvalidSecretSpec(`"${raw}": ${path} names a directory, not a file`);
  return { path, ref: parseSecretRef(ref) };
}
