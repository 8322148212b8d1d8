import {
  type FileDelivery,
  type HeaderDelivery,
  InvalidSecretSpec,
  parseFileDelivery,
  parseHeaderDelivery,
  parseSecretRef,
  type SecretRef,
} from "./secrets/spec.ts";

// The sidecar's configuration: one table of options, read from flags and environment variables,
// validated once with every problem reported together, and frozen (as fastify's
// initial-config-validation does). Pure: the caller passes argv and env; nothing here touches
// `process`.

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
export type ReadyProbeKind = "mcp" | "http" | "tcp";

export interface SidecarConfig {
  readonly upstream: URL;
  readonly port: number;
  readonly host: string;
  readonly healthPath: string;
  readonly readyPath: string;
  readonly readyProbe: ReadyProbeKind;
  readonly readyProbePath: string;
  readonly readyCacheMs: number;
  readonly readyTimeoutMs: number;
  readonly sseKeepaliveMs: number;
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamConnections: number;
  readonly drainDelayMs: number;
  readonly drainTimeoutMs: number;
  readonly drainRetryAfterMs: number;
  readonly logLevel: LogLevel;
  readonly secretsAgent: URL;
  readonly secretsToken: string | undefined;
  readonly secretsAgentTimeoutMs: number;
  readonly refreshIntervalMs: number;
  readonly maxStalenessMs: number;
  readonly authSecret: SecretRef | undefined;
  readonly injectHeaders: readonly HeaderDelivery[];
  readonly secretFiles: readonly FileDelivery[];
  readonly metricsPath: string;
  readonly metricsPort: number | undefined;
  readonly metricsMaxTools: number;
}

type Key = keyof SidecarConfig;

interface OptionSpec<K extends Key = Key> {
  readonly key: K;
  /** Flag name without the leading dashes; the env var is derived from it. */
  readonly flag: string;
  readonly valueName: string;
  /** Written as a user would type it; parsed with the same parser as user input. */
  readonly default: string | undefined;
  readonly description: string;
  /**
   * `required` (the default when there is no default value) or `optional` (undefined when absent);
   * `repeatable`: the flag may be given several times, the env var holds a comma-separated list, and
   * the value is the list of parsed items.
   */
  readonly kind?: "optional" | "repeatable";
  readonly parse: (raw: string) => K extends Key ? unknown : never;
}

/** Thrown by a parser; the caller prefixes the flag and env var names. */
class InvalidValue extends Error {}

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

function parseInteger(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new InvalidValue(`"${raw}" is not a whole number`);
    const value = Number(raw);
    if (value < min || value > max) throw new InvalidValue(`${value} is out of range (${min}-${max})`);
    return value;
  };
}

const parsePort = parseInteger(0, 65_535);

function parseEnum<T extends string>(allowed: readonly T[]) {
  return (raw: string): T => {
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new InvalidValue(`"${raw}" is not one of ${allowed.join(", ")}`);
    }
    return raw as T;
  };
}

function parsePath(raw: string): string {
  if (!raw.startsWith("/") || /[\s?#]/.test(raw)) {
    throw new InvalidValue(
      `"${raw}" is not a path (it must start with / and hold no query, fragment or space)`,
    );
  }
  return raw;
}

function parseHost(raw: string): string {
  if (raw.length === 0 || /[\s/]/.test(raw)) throw new InvalidValue(`"${raw}" is not a host name or address`);
  return raw;
}

function parseUpstream(raw: string): URL {
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

function parseAgentUrl(raw: string): URL {
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

function secretParser<T>(parse: (raw: string) => T) {
  return (raw: string): T => {
    try {
      return parse(raw);
    } catch (error) {
      if (error instanceof InvalidSecretSpec) throw new InvalidValue(error.message);
      throw error;
    }
  };
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
const READY_PROBES = ["mcp", "http", "tcp"] as const;

function option<K extends Key>(spec: OptionSpec<K>): OptionSpec<K> {
  return spec;
}

/** Every option the sidecar takes, in the order `--help` prints them. */
export const OPTIONS: readonly OptionSpec[] = [
  option({
    key: "upstream",
    flag: "upstream",
    valueName: "URL",
    default: undefined,
    description: "Origin of the MCP server to front (required), e.g. http://127.0.0.1:3000",
    parse: parseUpstream,
  }),
  option({
    key: "port",
    flag: "port",
    valueName: "PORT",
    default: "8080",
    description: "Port to listen on (0 = any free port)",
    parse: parsePort,
  }),
  option({
    key: "host",
    flag: "host",
    valueName: "HOST",
    default: "0.0.0.0",
    description: "Address to listen on",
    parse: parseHost,
  }),
  option({
    key: "healthPath",
    flag: "health-path",
    valueName: "PATH",
    default: "/health",
    description: "Liveness endpoint (200 while the process runs)",
    parse: parsePath,
  }),
  option({
    key: "readyPath",
    flag: "ready-path",
    valueName: "PATH",
    default: "/ready",
    description: "Readiness endpoint (200 only when the upstream and every required dependency answer)",
    parse: parsePath,
  }),
  option({
    key: "readyProbe",
    flag: "ready-probe",
    valueName: "KIND",
    default: "mcp",
    description:
      "How readiness checks the upstream: mcp (JSON-RPC ping POST, any JSON-RPC answer counts), http (GET, 2xx counts), tcp (connect)",
    parse: parseEnum(READY_PROBES),
  }),
  option({
    key: "readyProbePath",
    flag: "ready-probe-path",
    valueName: "PATH",
    default: "/mcp",
    description: "Upstream path the mcp or http readiness probe requests",
    parse: parsePath,
  }),
  option({
    key: "readyCacheMs",
    flag: "ready-cache",
    valueName: "DURATION",
    default: "2s",
    description: "How long a readiness probe result is reused, so health checks do not load the server",
    parse: parseDuration,
  }),
  option({
    key: "readyTimeoutMs",
    flag: "ready-timeout",
    valueName: "DURATION",
    default: "2s",
    description: "Time the readiness probe waits for the upstream",
    parse: parseDuration,
  }),
  option({
    key: "sseKeepaliveMs",
    flag: "sse-keepalive",
    valueName: "DURATION",
    default: "15s",
    description:
      "Write an SSE comment on a forwarded event stream silent this long (0 = off), between events only",
    parse: parseDuration,
  }),
  option({
    key: "maxBodyBytes",
    flag: "max-body-size",
    valueName: "SIZE",
    default: "4MiB",
    description: "Largest request body forwarded; larger gets 413",
    parse: parseSize,
  }),
  option({
    key: "maxHeaderBytes",
    flag: "max-header-size",
    valueName: "SIZE",
    default: "16KiB",
    description: "Largest total request header size; larger gets 431",
    parse: parseSize,
  }),
  option({
    key: "maxHeaderCount",
    flag: "max-header-count",
    valueName: "N",
    default: "100",
    description: "Most request header lines; more gets 431",
    parse: parseInteger(1, 10_000),
  }),
  option({
    key: "headersTimeoutMs",
    flag: "headers-timeout",
    valueName: "DURATION",
    default: "10s",
    description: "Time a client has to send its request headers (slowloris guard)",
    parse: parseDuration,
  }),
  option({
    key: "requestTimeoutMs",
    flag: "request-timeout",
    valueName: "DURATION",
    default: "60s",
    description:
      "Time a client has to send its whole request, body included (0 = off); never limits the response",
    parse: parseDuration,
  }),
  option({
    key: "keepAliveTimeoutMs",
    flag: "keep-alive-timeout",
    valueName: "DURATION",
    default: "65s",
    description:
      "Idle time before a client keep-alive connection is closed; above a load balancer's 60 s idle timeout",
    parse: parseDuration,
  }),
  option({
    key: "upstreamConnectTimeoutMs",
    flag: "upstream-connect-timeout",
    valueName: "DURATION",
    default: "5s",
    description: "Time to connect to the upstream before answering 504",
    parse: parseDuration,
  }),
  option({
    key: "upstreamHeadersTimeoutMs",
    flag: "upstream-headers-timeout",
    valueName: "DURATION",
    default: "0",
    description:
      "Time the upstream has to start its response before 504 (0 = off: a JSON tools/call answers only when done)",
    parse: parseDuration,
  }),
  option({
    key: "upstreamConnections",
    flag: "upstream-connections",
    valueName: "N",
    default: "0",
    description:
      "Most connections to the upstream (0 = no limit). Each open event stream holds one, so a limit below the number of open streams makes calls queue behind them",
    parse: parseInteger(0, 65_535),
  }),
  option({
    key: "drainDelayMs",
    flag: "drain-delay",
    valueName: "DURATION",
    default: "0",
    description: "After SIGTERM, keep serving this long while /ready fails, so a load balancer stops routing",
    parse: parseDuration,
  }),
  option({
    key: "drainTimeoutMs",
    flag: "drain-timeout",
    valueName: "DURATION",
    default: "25s",
    description: "After SIGTERM, cut what is still in flight after this long and exit non-zero",
    parse: parseDuration,
  }),
  option({
    key: "drainRetryAfterMs",
    flag: "drain-retry-after",
    valueName: "DURATION",
    default: "2s",
    description:
      "While draining: Retry-After of 503 answers and the SSE retry: sent before closing an event stream",
    parse: parseDuration,
  }),
  option({
    key: "secretsAgent",
    flag: "secrets-agent",
    valueName: "URL",
    default: "http://127.0.0.1:2773",
    description: "The AWS Secrets Manager Agent beside the sidecar (loopback only, as the agent accepts)",
    parse: parseAgentUrl,
  }),
  option({
    key: "secretsToken",
    flag: "secrets-token",
    valueName: "TOKEN",
    default: undefined,
    kind: "optional",
    description:
      "The agent's SSRF token, or file:///path to read it from; when absent it is read as the agent reads it: AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN",
    parse: (raw: string) => raw,
  }),
  option({
    key: "secretsAgentTimeoutMs",
    flag: "secrets-agent-timeout",
    valueName: "DURATION",
    default: "5s",
    description: "How long one request to the agent may take",
    parse: parseDuration,
  }),
  option({
    key: "refreshIntervalMs",
    flag: "refresh-interval",
    valueName: "DURATION",
    default: "30s",
    description:
      "How often secrets are polled from the agent (±10% jitter); a rotation shows within this plus the agent's ttl_seconds",
    parse: parseDuration,
  }),
  option({
    key: "maxStalenessMs",
    flag: "max-staleness",
    valueName: "DURATION",
    default: "0",
    description:
      "Fail /ready when a secret has not been refreshed for this long (0 = never: serve the last good value)",
    parse: parseDuration,
  }),
  option({
    key: "authSecret",
    flag: "auth-secret",
    valueName: "SECRET_ID[#key]",
    default: undefined,
    kind: "optional",
    description:
      "Clients must send Authorization: Bearer <this secret>; its AWSCURRENT and AWSPREVIOUS versions are both accepted during a rotation",
    parse: secretParser(parseSecretRef),
  }),
  option({
    key: "injectHeaders",
    flag: "inject-header",
    valueName: "NAME=SECRET_ID[#key]",
    default: undefined,
    kind: "repeatable",
    description:
      "Set header NAME to the secret's current value on every upstream request (repeatable; env: comma-separated)",
    parse: secretParser(parseHeaderDelivery),
  }),
  option({
    key: "secretFiles",
    flag: "secret-file",
    valueName: "/PATH=SECRET_ID[#key]",
    default: undefined,
    kind: "repeatable",
    description:
      "Keep the secret's current value in file PATH (atomic replace, mode 0400) (repeatable; env: comma-separated)",
    parse: secretParser(parseFileDelivery),
  }),
  option({
    key: "metricsPath",
    flag: "metrics-path",
    valueName: "PATH",
    default: "/metrics",
    description: "Prometheus metrics endpoint",
    parse: parsePath,
  }),
  option({
    key: "metricsPort",
    flag: "metrics-port",
    valueName: "PORT",
    default: undefined,
    kind: "optional",
    description:
      "Serve metrics on this port only (same --host), so they are never reachable through the load balancer; absent: on --port",
    parse: parsePort,
  }),
  option({
    key: "metricsMaxTools",
    flag: "metrics-max-tools",
    valueName: "N",
    default: "100",
    description:
      'Distinct tool names kept as metric labels; more fold into "other" (bounds the series count)',
    parse: parseInteger(1, 10_000),
  }),
  option({
    key: "logLevel",
    flag: "log-level",
    valueName: "LEVEL",
    default: "info",
    description: `Log level: ${LOG_LEVELS.join(", ")}`,
    parse: parseEnum(LOG_LEVELS),
  }),
];

/** Whether any secret delivery is configured, and so the Secrets Manager Agent is needed. */
export function needsSecretsAgent(
  config: Pick<SidecarConfig, "authSecret" | "injectHeaders" | "secretFiles">,
): boolean {
  return config.authSecret !== undefined || config.injectHeaders.length > 0 || config.secretFiles.length > 0;
}

export function envName(flag: string): string {
  return `MCP_SIDECAR_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export type ConfigResult =
  | { readonly kind: "config"; readonly config: SidecarConfig }
  | { readonly kind: "errors"; readonly errors: readonly string[] }
  | { readonly kind: "help" };

/**
 * Reads flags (`--name value` or `--name=value`) over environment variables over defaults.
 * Returns every problem at once rather than stopping at the first.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ConfigResult {
  const errors: string[] = [];
  const fromFlags = new Map<string, string[]>();
  const byFlag = new Map(OPTIONS.map((spec) => [spec.flag, spec]));

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") return { kind: "help" };
    if (!arg.startsWith("--")) {
      errors.push(`unexpected argument "${arg}" (options start with --; see --help)`);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byFlag.get(name);
    if (!spec) {
      errors.push(`unknown option --${name} (see --help)`);
      if (eq === -1 && argv[i + 1] !== undefined && !argv[i + 1]?.startsWith("--")) i++;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (argv[i + 1] !== undefined && !(argv[i + 1] as string).startsWith("--")) value = argv[++i];
    if (value === undefined) {
      errors.push(`--${name} needs a value (${spec.valueName})`);
      continue;
    }
    const previous = fromFlags.get(name);
    if (previous !== undefined && spec.kind !== "repeatable")
      errors.push(`--${name} is given more than once`);
    fromFlags.set(
      name,
      previous === undefined || spec.kind !== "repeatable" ? [value] : [...previous, value],
    );
  }

  const values: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const env_ = envName(spec.flag);
    const flagValues = fromFlags.get(spec.flag);
    const envValue = env[env_];
    const fromEnv = envValue !== undefined && envValue !== "";
    let raws: string[] | undefined;
    if (flagValues !== undefined) raws = flagValues;
    else if (fromEnv)
      raws =
        spec.kind === "repeatable"
          ? envValue
              .split(",")
              .map((item) => item.trim())
              .filter(Boolean)
          : [envValue];
    else if (spec.default !== undefined) raws = [spec.default];
    const where = flagValues === undefined && fromEnv ? env_ : `--${spec.flag} (${env_})`;
    if (raws === undefined) {
      if (spec.kind === "repeatable") values[spec.key] = [];
      else if (spec.kind === "optional") values[spec.key] = undefined;
      else errors.push(`--${spec.flag} (or ${env_}) is required: ${spec.description}`);
      continue;
    }
    const parsed: unknown[] = [];
    for (const raw of raws) {
      try {
        parsed.push(spec.parse(raw));
      } catch (error) {
        if (!(error instanceof InvalidValue)) throw error;
        errors.push(`${where}: ${error.message}`);
      }
    }
    values[spec.key] = spec.kind === "repeatable" ? Object.freeze(parsed) : parsed[0];
  }

  if (errors.length === 0) errors.push(...crossCheck(values as unknown as SidecarConfig));
  if (errors.length > 0) return { kind: "errors", errors };
  return { kind: "config", config: Object.freeze(values as unknown as SidecarConfig) };
}

function crossCheck(config: SidecarConfig): string[] {
  const errors: string[] = [];
  if (
    config.metricsPort === undefined &&
    [config.healthPath, config.readyPath].includes(config.metricsPath)
  ) {
    errors.push(`--metrics-path ${config.metricsPath} is also the health or ready path; they must differ`);
  }
  if (config.metricsPort !== undefined && config.metricsPort !== 0 && config.metricsPort === config.port) {
    errors.push(
      `--metrics-port ${config.metricsPort} is also --port; omit --metrics-port to serve metrics on --port`,
    );
  }
  if (config.healthPath === config.readyPath) {
    errors.push(`--health-path and --ready-path are both ${config.healthPath}; they must differ`);
  }
  const upstreamPort = Number(config.upstream.port || (config.upstream.protocol === "https:" ? 443 : 80));
  const loopback = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"];
  if (upstreamPort === config.port && loopback.includes(config.upstream.hostname)) {
    errors.push(
      `--upstream ${config.upstream.origin} is the sidecar's own --port ${config.port}: requests would loop`,
    );
  }
  if (config.requestTimeoutMs !== 0 && config.requestTimeoutMs < config.headersTimeoutMs) {
    errors.push("--request-timeout must be at least --headers-timeout (or 0 for off)");
  }
  if (config.readyTimeoutMs === 0) errors.push("--ready-timeout must be above 0");
  if (config.drainTimeoutMs === 0) errors.push("--drain-timeout must be above 0");
  if (config.refreshIntervalMs < 100) errors.push("--refresh-interval must be at least 100ms");
  if (config.secretsAgentTimeoutMs === 0) errors.push("--secrets-agent-timeout must be above 0");
  const headers = new Set<string>();
  for (const delivery of config.injectHeaders) {
    const lower = delivery.header.toLowerCase();
    if (headers.has(lower)) errors.push(`--inject-header: ${delivery.header} is given more than once`);
    headers.add(lower);
  }
  const paths = new Set<string>();
  for (const delivery of config.secretFiles) {
    if (paths.has(delivery.path)) errors.push(`--secret-file: ${delivery.path} is given more than once`);
    paths.add(delivery.path);
  }
  if (config.drainDelayMs >= config.drainTimeoutMs) {
    errors.push(
      `--drain-delay (${config.drainDelayMs} ms) must be shorter than --drain-timeout (${config.drainTimeoutMs} ms)`,
    );
  }
  return errors;
}

export function defaultLabel(spec: OptionSpec): string {
  if (spec.default !== undefined) return spec.default;
  if (spec.kind === "repeatable") return "(none; repeatable)";
  if (spec.kind === "optional") return "(none)";
  return "(none, required)";
}

/** `--help` text, generated from the table so it cannot drift from what is parsed. */
export function helpText(): string {
  const lines = [
    "Usage: mcp-sidecar --upstream URL [options]",
    "       mcp-sidecar healthcheck [--url URL]",
    "       mcp-sidecar agent-emulator --secrets FILE [options]   (see agent-emulator --help)",
    "",
    "A production sidecar for MCP servers speaking Streamable HTTP or legacy SSE: transparent streaming",
    "forwarding, truthful /health and /ready, graceful drain on SIGTERM.",
    "",
    "Options (each also read from the environment variable shown; flags win):",
  ];
  for (const spec of OPTIONS) {
    lines.push(`  --${spec.flag} ${spec.valueName}`);
    lines.push(`      ${spec.description}`);
    lines.push(`      env ${envName(spec.flag)}; default: ${defaultLabel(spec)}`);
  }
  lines.push("  -h, --help", "      Print this help and exit", "");
  lines.push("Durations: 500ms, 15s, 2m, 1h (a bare number is seconds). Sizes: 65536, 64KiB, 4MiB.");
  lines.push("Exit codes: 0 drained and stopped; 1 drain timed out or fatal error; 2 invalid configuration.");
  return lines.join("\n");
}
