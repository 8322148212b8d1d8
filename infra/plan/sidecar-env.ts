// The sidecar's environment in the task: the MCP_SIDECAR_* variables the component sets, and the
// options a stack adds by name (sidecarOptions), checked against the sidecar's own option table
// (proxy/config.ts OPTIONS) with its own parsers, so a preview refuses what the sidecar would refuse
// at start (it exits 2 on an invalid configuration: every task of the deployment would stop). Pure.

import { InvalidValue, quoteCommandLine } from "../../proxy/config/values.ts";
import { envName, OPTIONS, parseConfig, type ReadyProbeKind } from "../../proxy/config.ts";
import type { Timing } from "../plan.ts";
import type { InjectedHeader, StdioPlan } from "./containers.ts";
import { routingEnvironment } from "./routing.ts";

/**
 * The options the component sets itself, each with what owns it: a stack cannot override them
 * through sidecarOptions (the task's wiring depends on them: ports, loopback peers, the drain).
 */
export const OWNED_SIDECAR_OPTIONS: ReadonlyMap<string, string> = new Map([
  ["upstream", "set by serverPort (server.port): the server on the task's loopback"],
  ["port", "set by the component: the target group sends to the sidecar's port 8080"],
  ["host", "set by the component: the load balancer reaches the task's own address"],
  ["drain-timeout", "set by drainSeconds"],
  ["sse-keepalive", "set by the component: albIdleTimeoutSeconds is checked against it"],
  ["keep-alive-timeout", "set by albIdleTimeoutSeconds (5 s above it)"],
  ["metrics-port", "set by the component: metrics on 9090, never through the load balancer"],
  ["ready-path", "set by the component: the target group checks /ready"],
  ["ready-probe", "set by readyProbe"],
  ["ready-probe-path", "set by readyProbePath"],
  ["secrets-agent", "set by the component: the agent container on 127.0.0.1:2773"],
  ["secrets-token", "set by the component: the agent's SSRF token comes from the task's secrets"],
  ["auth-secret", "set by auth and apiKeySecretArn"],
  ["inject-header", "set by injectHeaders"],
  [
    "secret-file",
    "not available in this task: no volume is shared with the server, and the task role reads only the served secrets",
  ],
  ["log-level", "set by logLevel"],
  ["stdio", "set by server.stdio"],
  ["stdio-command", "set by server.stdio"],
  ["stdio-arg", "set by server.stdio"],
  ["stdio-cwd", "set by server.cwd"],
  ["stdio-env", "set by server.environment"],
  ["secret-env", "set by server.secretEnvironment"],
  ["max-sessions", "set by server.maxSessions (sized by the task's memory)"],
  ["stdio-spares", "set by server.spares (sized by the task's memory)"],
  ["stdio-pool", "set by server.pool (sized by the task's memory)"],
  ["session-routing", "set by sessionRouting (on by default when maxCount > 1)"],
  ["session-secret", "set by the component: a random secret the stack creates"],
  ["advertise-url", "set by the component: the task's own address (auto)"],
  ["peer-cidrs", "set by the component: the VPC's CIDR"],
]);

const SPECS = new Map(OPTIONS.map((spec) => [spec.flag, spec]));

/** How the sidecar's readiness checks the server: a path for mcp and http, none for tcp. */
export interface Readiness {
  readonly probe: ReadyProbeKind;
  readonly path: string | undefined;
}

/** The probe path defaults to the MCP path: the mcp probe POSTs a ping where clients send theirs. */
export function readiness(probe: ReadyProbeKind, probePath: string | undefined, mcpPath: string): Readiness {
  return { probe, path: probe === "tcp" ? undefined : (probePath ?? mcpPath) };
}

export interface SidecarEnvInput {
  /** `server`: the HTTP server's port on the task's loopback; none with a stdio server. */
  readonly ports: { readonly server?: number; readonly sidecar: number; readonly metrics: number };
  /** A stdio server run inside the sidecar's container, instead of an HTTP one. */
  readonly stdio?: StdioPlan;
  readonly agentPort: number;
  readonly timing: Timing;
  readonly logLevel: string;
  readonly readiness: Readiness;
  /** Undefined when auth is explicitly disabled. */
  readonly apiKeySecretArn: string | undefined;
  readonly injectHeaders: readonly InjectedHeader[];
  /** Further options by flag name (no dashes), checked by sidecarOptionProblems. */
  readonly options: Readonly<Record<string, string>>;
  /** Session routing across the service's tasks (plan/routing.ts), when on. */
  readonly routing?: { readonly sessionSecretArn: string; readonly peerCidr: string } | undefined;
}

/** The sidecar container's environment, as the sidecar's config parser reads it. */
export function sidecarEnvironment(input: SidecarEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  // The stack's own options first: the component's variables below always win (the checks refuse
  // an owned option anyway; this keeps the wiring intact even for an unchecked caller).
  for (const [flag, value] of Object.entries(input.options)) env[envName(flag)] = value;
  Object.assign(env, {
    MCP_SIDECAR_PORT: String(input.ports.sidecar),
    MCP_SIDECAR_HOST: "0.0.0.0",
    MCP_SIDECAR_METRICS_PORT: String(input.ports.metrics),
    MCP_SIDECAR_DRAIN_TIMEOUT: `${input.timing.drainSeconds}s`,
    MCP_SIDECAR_SSE_KEEPALIVE: `${input.timing.sseKeepaliveSeconds}s`,
    MCP_SIDECAR_KEEP_ALIVE_TIMEOUT: `${input.timing.clientKeepAliveSeconds}s`,
    MCP_SIDECAR_SECRETS_AGENT: `http://127.0.0.1:${input.agentPort}`,
    MCP_SIDECAR_LOG_LEVEL: input.logLevel,
  });
  if (input.stdio !== undefined) Object.assign(env, stdioEnvironment(input.stdio));
  else {
    env.MCP_SIDECAR_UPSTREAM = `http://127.0.0.1:${input.ports.server}`;
    env.MCP_SIDECAR_READY_PROBE = input.readiness.probe;
    if (input.readiness.path !== undefined) env.MCP_SIDECAR_READY_PROBE_PATH = input.readiness.path;
  }
  // ARNs, not values: the sidecar fetches the values from the agent and follows their rotation.
  if (input.apiKeySecretArn) env.MCP_SIDECAR_AUTH_SECRET = input.apiKeySecretArn;
  if (input.routing !== undefined) Object.assign(env, routingEnvironment(input.routing));
  if (input.injectHeaders.length > 0) {
    env.MCP_SIDECAR_INJECT_HEADER = input.injectHeaders
      .map((h) => `${h.header}=${h.secretArn}${h.jsonKey ? `#${h.jsonKey}` : ""}`)
      .join(",");
  }
  return env;
}

/**
 * The stdio server's variables: its command line quoted for the sidecar's own splitter (no shell),
 * the names of its plain variables (their values are the container's: a value may hold a comma),
 * its secrets by ARN, and the numbers the task's memory allows.
 */
function stdioEnvironment(stdio: StdioPlan): Record<string, string> {
  const { server } = stdio;
  const env: Record<string, string> = {
    MCP_SIDECAR_STDIO: quoteCommandLine(server.stdio),
    MCP_SIDECAR_MAX_SESSIONS: String(stdio.maxSessions),
    MCP_SIDECAR_STDIO_SPARES: String(stdio.spares),
    MCP_SIDECAR_STDIO_POOL: String(stdio.pool),
  };
  if (server.cwd !== undefined) env.MCP_SIDECAR_STDIO_CWD = server.cwd;
  const names = Object.keys(server.environment ?? {});
  if (names.length > 0) env.MCP_SIDECAR_STDIO_ENV = names.join(",");
  const secrets = server.secretEnvironment ?? [];
  if (secrets.length > 0)
    env.MCP_SIDECAR_SECRET_ENV = secrets
      .map((s) => `${s.name}=${s.secretArn}${s.jsonKey ? `#${s.jsonKey}` : ""}`)
      .join(",");
  return env;
}

/** A value of a setting the sidecar parses (mcpPath, readyProbe, logLevel...), checked by its parser. */
export function sidecarValueProblem(key: string, flag: string, value: string): string | undefined {
  try {
    SPECS.get(flag)?.parse(value);
    return undefined;
  } catch (error) {
    if (!(error instanceof InvalidValue)) throw error;
    return `${key}: ${error.message}`;
  }
}

/**
 * Each further option on its own: a known option of the sidecar, not one the component owns, with a
 * value the sidecar's parser accepts. Values are echoed only from those parsers, and no option left
 * to a stack holds a secret (--secrets-token is owned).
 */
export function sidecarOptionProblems(options: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  for (const [flag, value] of Object.entries(options)) {
    const owner = OWNED_SIDECAR_OPTIONS.get(flag);
    if (owner !== undefined) {
      problems.push(`sidecarOptions: --${flag} is ${owner}`);
      continue;
    }
    if (!SPECS.has(flag)) {
      problems.push(
        `sidecarOptions: --${flag} is not an option of the sidecar (mcp-sidecar --help lists them)`,
      );
      continue;
    }
    const problem = sidecarValueProblem(`sidecarOptions: --${flag}`, flag, value);
    if (problem) problems.push(problem);
  }
  return problems;
}

/**
 * What the sidecar's own parser says of the whole environment: the checks across options (e.g.
 * --drain-delay shorter than the drain timeout, --request-timeout at least --headers-timeout).
 */
export function sidecarConfigProblems(env: Readonly<Record<string, string>>): string[] {
  const parsed = parseConfig([], env);
  return parsed.kind === "errors"
    ? parsed.errors.map((error) => `sidecarOptions: the sidecar refuses ${error}`)
    : [];
}

/** The settings that reach the sidecar, as a service's shape holds them. */
export interface SidecarSettings {
  readonly mcpPath: string;
  readonly readyProbe: string;
  readonly readyProbePath: string | undefined;
  readonly logLevel: string;
  readonly sidecarOptions: Readonly<Record<string, string>>;
}

/**
 * Everything wrong with the settings the sidecar is given, each naming its setting. With `timing`
 * (undefined when the drain settings are wrong: reported already), the whole environment also goes
 * through the sidecar's own parser, for what no single setting shows.
 */
export function sidecarSettingsProblems(
  settings: SidecarSettings,
  wiring: Pick<SidecarEnvInput, "ports" | "agentPort" | "stdio"> & { readonly timing: Timing | undefined },
): string[] {
  const values: [key: string, flag: string, value: string | undefined][] = [
    ["mcpPath", "ready-probe-path", settings.mcpPath],
    ["readyProbe", "ready-probe", settings.readyProbe],
    ["readyProbePath", "ready-probe-path", settings.readyProbePath],
    ["logLevel", "log-level", settings.logLevel],
  ];
  const problems: string[] = [];
  for (const [key, flag, value] of values) {
    const problem = value === undefined ? undefined : sidecarValueProblem(key, flag, value);
    if (problem) problems.push(problem);
  }
  if (settings.readyProbe === "tcp" && settings.readyProbePath !== undefined)
    problems.push("readyProbePath is set but readyProbe is tcp: a TCP connect requests no path");
  problems.push(...sidecarOptionProblems(settings.sidecarOptions));
  // A stdio server's command line and variables always go through the parser: it splits the one
  // and checks the others as it will at start.
  const nothingToCross = Object.keys(settings.sidecarOptions).length === 0 && wiring.stdio === undefined;
  if (problems.length > 0 || wiring.timing === undefined || nothingToCross) return problems;
  const probe = settings.readyProbe as ReadyProbeKind;
  return sidecarConfigProblems({
    ...wiring.stdio?.server.environment,
    ...sidecarEnvironment({
      ...wiring,
      timing: wiring.timing,
      logLevel: settings.logLevel,
      readiness: readiness(probe, settings.readyProbePath, settings.mcpPath),
      apiKeySecretArn: undefined,
      injectHeaders: [],
      options: settings.sidecarOptions,
    }),
  });
}
