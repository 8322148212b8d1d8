// The agent's config.toml, validated as agent 2.0.0 validates it (aws_secretsmanager_agent
// src/config.rs): unknown keys are fatal, numbers may be quoted, ranges as below. The emulator reads
// the same file the real agent would get, so a config that passes here starts the real agent too.

import { readFileSync } from "node:fs";
import { parse as parseToml } from "smol-toml";
import { DEFAULT_SSRF_ENV_VARIABLES } from "../../proxy/secrets/agent-token.ts";
import { DEFAULT_EMULATOR_SETTINGS, type EmulatorSettings } from "./emulator.ts";

export interface AgentConfig {
  readonly settings: Omit<EmulatorSettings, "token">;
  readonly ssrfEnvVariables: readonly string[];
  readonly logLevel: "debug" | "info" | "warn" | "error" | "none";
}

export class AgentConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: ${problems.join("; ")}`);
    this.problems = problems;
  }
}

const KNOWN_KEYS = new Set([
  "log_level",
  "log_to_file",
  "http_port",
  "ttl_seconds",
  "cache_size",
  "ssrf_headers",
  "ssrf_env_variables",
  "path_prefix",
  "max_conn",
  "region",
  "ignore_transient_errors",
  "validate_credentials",
]);

export function parseAgentConfig(document: Record<string, unknown>, source = "config.toml"): AgentConfig {
  const problems: string[] = [];
  for (const key of Object.keys(document)) {
    if (KNOWN_KEYS.has(key)) continue;
    problems.push(
      key === "credentials_file_path"
        ? "credentials_file_path is not a key of agent 2.0.0 (it came later); the agent would refuse to start"
        : `unknown key ${key} (the agent refuses unknown keys)`,
    );
  }
  const integer = (key: string, fallback: number, valid: (n: number) => boolean, range: string): number => {
    const raw = document[key];
    if (raw === undefined) return fallback;
    const value = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof value !== "number" || !Number.isInteger(value) || !valid(value)) {
      problems.push(`${key}: ${JSON.stringify(raw)} is out of range (${range})`);
      return fallback;
    }
    return value;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const raw = document[key];
    if (raw === undefined) return fallback;
    if (typeof raw !== "boolean") problems.push(`${key}: must be true or false`);
    return raw === true;
  };
  const list = (key: string, fallback: readonly string[]): readonly string[] => {
    const raw = document[key];
    if (raw === undefined) return fallback;
    if (!Array.isArray(raw) || raw.length === 0 || raw.some((item) => typeof item !== "string")) {
      problems.push(`${key}: must be a non-empty list of strings`);
      return fallback;
    }
    return raw as string[];
  };

  const defaults = DEFAULT_EMULATOR_SETTINGS;
  const port = integer(
    "http_port",
    defaults.port,
    (n) => n === 0 || (n >= 1024 && n <= 65_535),
    "0 or 1024-65535",
  );
  const ttlSeconds = integer(
    "ttl_seconds",
    defaults.cache.ttlMs / 1000,
    (n) => n >= 0 && n <= 3600,
    "0-3600",
  );
  const cacheSize = integer("cache_size", defaults.cache.size, (n) => n >= 1 && n <= 1000, "1-1000");
  const maxConn = integer("max_conn", defaults.maxConn, (n) => n >= 1 && n <= 1000, "1-1000");
  const ignoreTransientErrors = bool("ignore_transient_errors", defaults.cache.ignoreTransientErrors);
  bool("log_to_file", true);
  bool("validate_credentials", true);
  const ssrfHeaders = list("ssrf_headers", defaults.ssrfHeaders);
  const ssrfEnvVariables = list("ssrf_env_variables", DEFAULT_SSRF_ENV_VARIABLES);
  const pathPrefix = document.path_prefix ?? defaults.pathPrefix;
  if (typeof pathPrefix !== "string" || !pathPrefix.startsWith("/"))
    problems.push("path_prefix: must start with /");
  const level = String(document.log_level ?? "info").toLowerCase();
  if (!["debug", "info", "warn", "error", "none"].includes(level))
    problems.push(`log_level: ${level} is not debug, info, warn, error or none`);
  if (document.region !== undefined && typeof document.region !== "string")
    problems.push("region: must be a string");

  if (problems.length > 0) throw new AgentConfigError(source, problems);
  return {
    settings: {
      ...DEFAULT_EMULATOR_SETTINGS,
      port,
      ssrfHeaders,
      pathPrefix: pathPrefix as string,
      maxConn,
      cache: { ttlMs: ttlSeconds * 1000, size: cacheSize, ignoreTransientErrors },
    },
    ssrfEnvVariables,
    logLevel: level as AgentConfig["logLevel"],
  };
}

export function readAgentConfig(file: string | undefined): AgentConfig {
  if (file === undefined) return parseAgentConfig({});
  let document: Record<string, unknown>;
  try {
    document = parseToml(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new AgentConfigError(file, [(error as Error).message]);
  }
  return parseAgentConfig(document, file);
}
