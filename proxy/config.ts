// The sidecar's configuration: one table of options, read from flags and environment variables,
// validated once with every problem reported together, and frozen (as fastify's
// initial-config-validation does). Pure: the caller passes argv and env; nothing here touches
// `process`.
//
// The options themselves are in config/, one table per concern, in the order --help prints them.

import { DRAIN_OPTIONS } from "./config/drain-options.ts";
import type { OptionSpec } from "./config/option.ts";
import { ROUTING_OPTIONS, routingProblems, type SessionContinuity } from "./config/routing-options.ts";
import { SECRETS_OPTIONS } from "./config/secrets-options.ts";
import { SERVING_OPTIONS } from "./config/serving-options.ts";
import { STDIO_OPTIONS } from "./config/stdio-options.ts";
import { TELEMETRY_OPTIONS } from "./config/telemetry-options.ts";
import type { EnvSetting } from "./config/values.ts";
import { InvalidValue } from "./config/values.ts";
import type { EnvDelivery, FileDelivery, HeaderDelivery, SecretRef } from "./secrets/spec.ts";
import type { Cidr } from "./sessions/cidr.ts";

export { parseDuration, parseSize } from "./config/values.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
export type ReadyProbeKind = "mcp" | "http" | "tcp";

export interface SidecarConfig {
  /** The HTTP MCP server to front; undefined when a stdio server is run instead (--stdio). */
  readonly upstream: URL | undefined;
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
  readonly secretEnv: readonly EnvDelivery[];
  /** --stdio, split into argv. */
  readonly stdio: readonly string[] | undefined;
  readonly stdioCommand: string | undefined;
  readonly stdioArgs: readonly string[];
  readonly stdioCwd: string | undefined;
  readonly stdioEnv: readonly EnvSetting[];
  readonly sessionIdleTimeoutMs: number;
  readonly maxSessions: number;
  readonly stdioStopGraceMs: number;
  readonly stdioSpares: number;
  readonly stdioPool: number;
  readonly rollOnRotation: boolean;
  /**
   * The stdio children's command line (--stdio, or --stdio-command with --stdio-arg) and the values
   * of the sidecar's own environment they may get (PATH, HOME, LANG, TZ, each --stdio-env NAME):
   * read here, from the environment parseConfig is given, so nothing else reads the process's.
   */
  readonly stdioCommandLine: readonly string[] | undefined;
  readonly stdioBaseEnv: Readonly<Record<string, string>>;
  readonly sessionRouting: boolean;
  readonly sessionSecret: SecretRef | undefined;
  readonly sessionContinuity: SessionContinuity;
  readonly advertiseUrl: URL | "auto" | undefined;
  readonly peerCidrs: readonly Cidr[];
  readonly peerTimeoutMs: number;
  /** ECS_CONTAINER_METADATA_URI_V4 from the environment parseConfig is given (for --advertise-url auto). */
  readonly ecsMetadataUri: string | undefined;
  readonly metricsPath: string;
  readonly metricsPort: number | undefined;
  readonly metricsMaxTools: number;
}

/** Every option the sidecar takes, in the order `--help` prints them. */
export const OPTIONS: readonly OptionSpec[] = [
  ...SERVING_OPTIONS,
  ...STDIO_OPTIONS,
  ...ROUTING_OPTIONS,
  ...DRAIN_OPTIONS,
  ...SECRETS_OPTIONS,
  ...TELEMETRY_OPTIONS,
];

/** Whether any secret delivery is configured, and so the Secrets Manager Agent is needed. */
export function needsSecretsAgent(
  config: Pick<SidecarConfig, "authSecret" | "injectHeaders" | "secretFiles"> &
    Partial<Pick<SidecarConfig, "secretEnv" | "sessionSecret">>,
): boolean {
  return (
    config.authSecret !== undefined ||
    config.sessionSecret !== undefined ||
    config.injectHeaders.length > 0 ||
    config.secretFiles.length > 0 ||
    (config.secretEnv?.length ?? 0) > 0
  );
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

  if (errors.length === 0) {
    const stdio = values.stdio as string[] | undefined;
    const command = values.stdioCommand as string | undefined;
    values.stdioCommandLine =
      stdio ?? (command === undefined ? undefined : [command, ...(values.stdioArgs as string[])]);
    const base: Record<string, string> = {};
    for (const name of CHILD_BASE_ENV) if (env[name] !== undefined) base[name] = env[name] as string;
    for (const setting of values.stdioEnv as EnvSetting[]) {
      if (setting.value !== undefined) continue;
      const value = env[setting.name];
      if (value === undefined)
        errors.push(
          `--stdio-env ${setting.name}: ${setting.name} is not set in the sidecar's environment (give NAME=VALUE)`,
        );
      else base[setting.name] = value;
    }
    values.stdioBaseEnv = Object.freeze(base);
    const metadata = env.ECS_CONTAINER_METADATA_URI_V4;
    values.ecsMetadataUri = metadata === undefined || metadata === "" ? undefined : metadata;
    errors.push(...crossCheck(values as unknown as SidecarConfig));
  }
  if (errors.length > 0) return { kind: "errors", errors };
  return { kind: "config", config: Object.freeze(values as unknown as SidecarConfig) };
}

/** What every stdio child gets from the sidecar's environment, unasked. */
const CHILD_BASE_ENV = ["PATH", "HOME", "LANG", "TZ"] as const;

/** The sidecar's own variables, never handed to a child: its agent token above all. */
/** The sidecar's own variables: never a child's. */
export const SIDECAR_ONLY_ENV =
  /^(AWS_TOKEN|AWS_SESSION_TOKEN|AWS_CONTAINER_AUTHORIZATION_TOKEN|MCP_SIDECAR_.*)$/;

function crossCheck(config: SidecarConfig): string[] {
  const errors: string[] = [];
  const stdioGiven = [
    config.stdio !== undefined && "--stdio",
    config.stdioCommand !== undefined && "--stdio-command",
  ].filter(Boolean);
  if (stdioGiven.length === 2) errors.push("--stdio and --stdio-command are both set: give one");
  if (config.upstream === undefined && stdioGiven.length === 0)
    errors.push(
      `--upstream (or ${envName("upstream")}) is required: the MCP server to front, e.g. http://127.0.0.1:3000 (or --stdio to run a stdio server)`,
    );
  if (config.upstream !== undefined && stdioGiven.length > 0)
    errors.push(`--upstream and ${stdioGiven[0]} are both set: the sidecar fronts one server`);
  if (config.stdioArgs.length > 0 && config.stdioCommand === undefined)
    errors.push("--stdio-arg needs --stdio-command (with --stdio, put the arguments in its string)");
  if (stdioGiven.length === 0) {
    for (const [flag, set] of [
      ["--stdio-cwd", config.stdioCwd !== undefined],
      ["--stdio-env", config.stdioEnv.length > 0],
      ["--secret-env", config.secretEnv.length > 0],
    ] as const)
      if (set) errors.push(`${flag} is for a stdio server: set --stdio too`);
  }
  const childNames = new Set<string>();
  for (const name of [...config.stdioEnv.map((s) => s.name), ...config.secretEnv.map((d) => d.name)]) {
    if (SIDECAR_ONLY_ENV.test(name))
      errors.push(`--stdio-env/--secret-env ${name}: the sidecar's own variables are never given to a child`);
    if (childNames.has(name)) errors.push(`--stdio-env/--secret-env: ${name} is given more than once`);
    childNames.add(name);
  }
  errors.push(...routingProblems(config));
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
  const upstream = config.upstream;
  const upstreamPort = upstream && Number(upstream.port || (upstream.protocol === "https:" ? 443 : 80));
  const loopback = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"];
  if (upstream && upstreamPort === config.port && loopback.includes(upstream.hostname)) {
    errors.push(
      `--upstream ${upstream.origin} is the sidecar's own --port ${config.port}: requests would loop`,
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
    '       mcp-sidecar --stdio "COMMAND ARGS..." [options]',
    "       mcp-sidecar healthcheck [--url URL]",
    "       mcp-sidecar agent-emulator --secrets FILE [options]   (see agent-emulator --help)",
    "",
    "A production sidecar for MCP servers speaking Streamable HTTP or legacy SSE (or stdio: --stdio): transparent streaming",
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
