// Parsers of option values: each takes the text a user typed and returns the value or throws
// InvalidValue with a message the caller prefixes with the flag and variable names. Pure.

import { InvalidSecretSpec } from "../secrets/spec.ts";

/** Thrown by a parser; the caller prefixes the flag and env var names. */
export class InvalidValue extends Error {}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `15s`, `2m`, `1h`; a bare number means seconds. */
export function parseDuration(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!match)
    throw new InvalidValue(`"${raw}" is not a duration (use e.g. 500ms, 15s, 2m; a bare number is seconds)`);
  const unit = DURATION_UNITS_MS[match[2] ?? "s"] ?? 1000;
  const ms = Number(match[1]) * unit;
  if (!Number.isSafeInteger(Math.round(ms)) || ms > 2_147_483_647) {
    throw new InvalidValue(`"${raw}" is too long (at most about 24 days)`);
  }
  return Math.round(ms);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** `65536`, `64KiB`, `4MiB`, `1MB`. */
export function parseSize(raw: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const multiplier = match ? SIZE_UNITS[(match[2] ?? "").toLowerCase()] : undefined;
  if (!match || multiplier === undefined) {
    throw new InvalidValue(`"${raw}" is not a size (use e.g. 65536, 64KiB, 4MiB)`);
  }
  const bytes = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InvalidValue(`"${raw}" is out of range`);
  return bytes;
}

export function parseInteger(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new InvalidValue(`"${raw}" is not a whole number`);
    const value = Number(raw);
    if (value < min || value > max) throw new InvalidValue(`${value} is out of range (${min}-${max})`);
    return value;
  };
}

export const parsePort = parseInteger(0, 65_535);

export function parseEnum<T extends string>(allowed: readonly T[]) {
  return (raw: string): T => {
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new InvalidValue(`"${raw}" is not one of ${allowed.join(", ")}`);
    }
    return raw as T;
  };
}

export function parsePath(raw: string): string {
  if (!raw.startsWith("/") || /[\s?#]/.test(raw)) {
    throw new InvalidValue(
      `"${raw}" is not a path (it must start with / and hold no query, fragment or space)`,
    );
  }
  return raw;
}

export function parseHost(raw: string): string {
  if (raw.length === 0 || /[\s/]/.test(raw)) throw new InvalidValue(`"${raw}" is not a host name or address`);
  return raw;
}

export function parseUpstream(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidValue(`"${raw}" is not a URL (expected e.g. http://127.0.0.1:3000)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidValue(`"${raw}" must use http: or https:`);
  }
  // Paths are forwarded unchanged, so the upstream is an origin: a path here would be silently ignored.
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new InvalidValue(
      `"${raw}" must be an origin only (no path, query or fragment); paths are forwarded as sent`,
    );
  }
  if (url.username || url.password) throw new InvalidValue(`"${raw}" must not carry credentials`);
  return new URL(url.origin);
}

export function parseAgentUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidValue(`"${raw}" is not a URL (expected e.g. http://127.0.0.1:2773)`);
  }
  if (url.protocol !== "http:") throw new InvalidValue(`"${raw}": the agent speaks plain http on loopback`);
  if (url.hostname === "localhost") {
    throw new InvalidValue(
      `"${raw}": use 127.0.0.1, not localhost (Node may resolve it to ::1; the agent listens on IPv4 only)`,
    );
  }
  if (!/^127\.\d+\.\d+\.\d+$/.test(url.hostname)) {
    throw new InvalidValue(`"${raw}": the agent only accepts loopback connections (127.0.0.1)`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search)
    throw new InvalidValue(`"${raw}" must be an origin only`);
  return new URL(url.origin);
}

export function secretParser<T>(parse: (raw: string) => T) {
  return (raw: string): T => {
    try {
      return parse(raw);
    } catch (error) {
      if (error instanceof InvalidSecretSpec) throw new InvalidValue(error.message);
      throw error;
    }
  };
}

/**
 * A command line split into argv the way a user means it, with no shell: words split on
 * whitespace, '…' taken literally, "…" with \" and \\ escapes, a backslash escaping the next
 * character outside quotes. No globbing, no variables, no operators: `;`, `|` or `$(…)` are just
 * characters of an argument.
 */
export function parseCommandLine(raw: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && (raw[i + 1] === '"' || raw[i + 1] === "\\")) word += raw[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 >= raw.length) throw new InvalidValue(`"${raw}" ends with a lone backslash`);
      word += raw[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new InvalidValue(`"${raw}" has an unclosed ${quote} quote`);
  if (inWord) words.push(word);
  if (words.length === 0) throw new InvalidValue("is empty: give the command to run (and its arguments)");
  return words;
}

/** The inverse of parseCommandLine: argv as one string it splits back into the same words. */
export function quoteCommandLine(argv: readonly string[]): string {
  return argv.map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
}

export interface EnvSetting {
  readonly name: string;
  /** undefined: copied from the sidecar's own environment. */
  readonly value: string | undefined;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `NAME` (copy the sidecar's value) or `NAME=VALUE`. */
export function parseEnvSetting(raw: string): EnvSetting {
  const eq = raw.indexOf("=");
  const name = eq === -1 ? raw : raw.slice(0, eq);
  if (!ENV_NAME.test(name)) throw new InvalidValue(`"${name}" is not an environment variable name`);
  return { name, value: eq === -1 ? undefined : raw.slice(eq + 1) };
}

export function parseDirectory(raw: string): string {
  if (raw.trim() === "" || raw.includes("\0")) throw new InvalidValue(`"${raw}" is not a directory path`);
  return raw;
}

/** An executable to run as it is named (a path, or a name looked up in PATH), never through a shell. */
export function parseExecutable(raw: string): string {
  if (raw.trim() === "" || raw !== raw.trim())
    throw new InvalidValue(`"${raw}" is not a command (no spaces around it)`);
  return raw;
}

/** `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`). */
export function parseBoolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(value)) return true;
  if (["false", "0", "no", "off"].includes(value)) return false;
  throw new InvalidValue(`"${raw}" is not true or false`);
}
