// The SSRF token of the Secrets Manager Agent, read the way the agent reads it: the first set
// variable among AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN (its default
// `ssrf_env_variables`); a value starting with file:// names a file whose trimmed content is the
// token. The first *set* variable wins even when empty, and an empty token is accepted: the agent
// 2.0.0 does exactly that. Used by the sidecar's client and by the emulator, so both agree.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const DEFAULT_SSRF_ENV_VARIABLES = [
  "AWS_TOKEN",
  "AWS_SESSION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
] as const;

export class AgentTokenError extends Error {
  override name = "AgentTokenError";
}

export interface AgentTokenSource {
  /** Where it came from, for messages: a variable name or a file path (never the value). */
  readonly source: string;
  readonly token: string;
}

/** Resolves a token value that may be `file://...`. */
export function resolveTokenValue(value: string, source: string): AgentTokenSource {
  if (!value.startsWith("file://")) return { source, token: value };
  let path: string;
  try {
    path = fileURLToPath(value);
  } catch {
    throw new AgentTokenError(`${source}: "${value}" is not a file:// URL`);
  }
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch (error) {
    throw new AgentTokenError(
      `${source}: cannot read token file ${path} (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  return { source: `${source} (${path})`, token: content.trim() };
}

export function readAgentToken(
  env: Readonly<Record<string, string | undefined>>,
  variables: readonly string[] = DEFAULT_SSRF_ENV_VARIABLES,
): AgentTokenSource {
  for (const name of variables) {
    const value = env[name];
    if (value !== undefined) return resolveTokenValue(value, name);
  }
  throw new AgentTokenError(`no SSRF token: set one of ${variables.join(", ")} (a value or file:///path)`);
}
