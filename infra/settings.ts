// The stack's configuration (Pulumi.yaml declares the schema; Pulumi.<stack>.yaml sets values),
// read and checked once: every problem is reported together, naming its config key.
//
// Defaults: a key McpService takes is left undefined when unset, so the component's own default
// applies (plan.ts SERVICE_DEFAULTS); the stack's own keys default here (STACK_DEFAULTS). Pulumi.yaml
// declares no defaults: its descriptions quote these, and test/infra.test.ts keeps them in step.

import * as pulumi from "@pulumi/pulumi";
import type { ReadyProbeKind } from "../proxy/config.ts";
import { InvalidSecretSpec, parseEnvDelivery, parseHeaderDelivery } from "../proxy/secrets/spec.ts";
import type { SecretVariable } from "./plan/containers.ts";
import {
  type Architecture,
  type AuthSetting,
  type InjectedHeader,
  PlanError,
  serviceProblems,
  serviceShape,
} from "./plan.ts";

/** The defaults of the stack's own settings (those McpService does not take). */
export const STACK_DEFAULTS = Object.freeze({
  allowedCidrs: ["0.0.0.0/0"] as readonly string[],
  serverPort: 3000,
  serverReadonlyRootFilesystem: false,
  auth: "create" as const,
  agentTtlSeconds: 30,
  keepReleases: 20,
});

/** What the reference server (server/main.ts) fixes: where it serves MCP, what gives it its port. */
export const REFERENCE_SERVER = Object.freeze({ mcpPath: "/mcp", portVariable: "MCP_SERVER_PORT" });

/** Undefined: not set, the component's default applies. */
export interface StackSettings {
  readonly architecture: Architecture | undefined;
  readonly cpu: number | undefined;
  readonly memory: number | undefined;
  readonly minCount: number | undefined;
  readonly maxCount: number | undefined;
  readonly desiredCount: number | undefined;
  readonly targetCpuPercent: number | undefined;
  readonly drainSeconds: number | undefined;
  readonly agentTtlSeconds: number;
  readonly logRetentionDays: number | undefined;
  readonly allowedCidrs: readonly string[];
  readonly certificateArn: string | undefined;
  readonly vpc:
    | { readonly vpcId: string; readonly publicSubnetIds: string[]; readonly privateSubnetIds: string[] }
    | undefined;
  readonly assignPublicIp: boolean | undefined;
  readonly sessionRouting: boolean | undefined;
  readonly serverStateless: boolean | undefined;
  readonly serverImage: string | undefined;
  readonly serverPort: number;
  readonly serverHealthCheck: readonly string[] | undefined;
  readonly serverUser: string | undefined;
  readonly serverReadonlyRootFilesystem: boolean;
  readonly agentImage: string | undefined;
  readonly agentHealthCheck: readonly string[] | undefined;
  readonly auth: AuthSetting;
  readonly injectHeaders: readonly InjectedHeader[];
  readonly serverEnvironment: Readonly<Record<string, string>> | undefined;
  readonly mcpPath: string | undefined;
  readonly readyProbe: ReadyProbeKind | undefined;
  readonly readyProbePath: string | undefined;
  readonly logLevel: string | undefined;
  readonly sidecarOptions: Readonly<Record<string, string>> | undefined;
  readonly sidecarMemory: number | undefined;
  readonly kmsKeyArn: string | undefined;
  readonly imageTag: string | undefined;
  readonly keepReleases: number;
}

const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export function readSettings(config: pulumi.Config = new pulumi.Config()): StackSettings {
  const problems: string[] = [];
  const int = (key: string, min: number, max: number): number | undefined => {
    const value = config.getNumber(key);
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max))
      problems.push(`${key}: ${value} is not a whole number in ${min}..${max}`);
    return value;
  };
  const strings = (key: string): string[] | undefined => {
    const value = config.getObject<unknown>(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
      problems.push(`${key}: must be a list of strings`);
      return [];
    }
    return value as string[];
  };

  const architecture = config.get("architecture");
  if (architecture !== undefined && architecture !== "ARM64" && architecture !== "X86_64")
    problems.push(`architecture: "${architecture}" is not ARM64 or X86_64`);

  const vpcId = config.get("vpcId");
  const publicSubnetIds = strings("publicSubnetIds");
  const privateSubnetIds = strings("privateSubnetIds");
  let vpc: StackSettings["vpc"];
  if (vpcId !== undefined) {
    if (!publicSubnetIds?.length || !privateSubnetIds?.length)
      problems.push("vpcId is set: publicSubnetIds and privateSubnetIds must be set too");
    vpc = { vpcId, publicSubnetIds: publicSubnetIds ?? [], privateSubnetIds: privateSubnetIds ?? [] };
  } else if (publicSubnetIds || privateSubnetIds) {
    problems.push("publicSubnetIds/privateSubnetIds are set without vpcId");
  }

  const authMode = config.get("auth") ?? STACK_DEFAULTS.auth;
  const apiKeySecretArn = config.get("apiKeySecretArn");
  let auth: AuthSetting = { mode: "create" };
  if (authMode === "existing") {
    if (!apiKeySecretArn) problems.push('auth is "existing": apiKeySecretArn must name the secret');
    auth = { mode: "existing", secretArn: apiKeySecretArn ?? "" };
  } else if (authMode === "disabled") {
    auth = { mode: "disabled" };
  } else if (authMode !== "create") {
    problems.push(`auth: "${authMode}" is not create, existing or disabled`);
  }
  if (authMode !== "existing" && apiKeySecretArn)
    problems.push(`apiKeySecretArn is set but auth is "${authMode}" (set auth: existing)`);

  const injectHeaders = parseInjectHeaders(strings("injectHeaders") ?? [], problems);
  const environment = strings("serverEnvironment");
  const serverEnvironment = environment && parseServerEnvironment(environment, problems);
  const options = strings("sidecarOptions");
  const sidecarOptions = options && parseSidecarOptions(options, problems);
  const mcpPath = config.get("mcpPath");
  const serverImage = config.get("serverImage");
  if (!serverImage && mcpPath !== undefined && mcpPath !== REFERENCE_SERVER.mcpPath)
    problems.push(
      `mcpPath is for serverImage: the reference server serves MCP at ${REFERENCE_SERVER.mcpPath}`,
    );
  if (!serverImage && serverEnvironment && Object.hasOwn(serverEnvironment, REFERENCE_SERVER.portVariable))
    problems.push(
      `serverEnvironment: ${REFERENCE_SERVER.portVariable} is set by serverPort for the reference server`,
    );

  const logRetentionDays = config.getNumber("logRetentionDays");
  if (logRetentionDays !== undefined && !RETENTION_DAYS.includes(logRetentionDays))
    problems.push(
      `logRetentionDays: ${logRetentionDays} is not a CloudWatch retention (${RETENTION_DAYS.join(", ")})`,
    );

  const serverUser = config.get("serverUser");
  if (serverUser !== undefined && !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(serverUser))
    problems.push(`serverUser: "${serverUser}" is not user, uid, user:group or uid:gid`);

  const settings: StackSettings = {
    architecture: architecture as StackSettings["architecture"],
    cpu: int("cpu", 256, 16_384),
    memory: int("memory", 512, 122_880),
    minCount: int("minCount", 1, 100),
    maxCount: int("maxCount", 1, 100),
    desiredCount: int("desiredCount", 1, 100),
    targetCpuPercent: int("targetCpuPercent", 10, 95),
    drainSeconds: int("drainSeconds", 1, 3600),
    agentTtlSeconds: int("agentTtlSeconds", 0, 3600) ?? STACK_DEFAULTS.agentTtlSeconds,
    logRetentionDays,
    allowedCidrs: strings("allowedCidrs") ?? STACK_DEFAULTS.allowedCidrs,
    certificateArn: config.get("certificateArn"),
    vpc,
    assignPublicIp: config.getBoolean("assignPublicIp"),
    sessionRouting: config.getBoolean("sessionRouting"),
    serverStateless: config.getBoolean("serverStateless"),
    serverImage,
    serverPort: int("serverPort", 1, 65_535) ?? STACK_DEFAULTS.serverPort,
    serverHealthCheck: strings("serverHealthCheck"),
    serverUser,
    serverReadonlyRootFilesystem:
      config.getBoolean("serverReadonlyRootFilesystem") ?? STACK_DEFAULTS.serverReadonlyRootFilesystem,
    agentImage: config.get("agentImage"),
    agentHealthCheck: strings("agentHealthCheck"),
    auth,
    injectHeaders,
    serverEnvironment,
    mcpPath,
    // Checked with the sidecar's own parser, with every other problem (serviceProblems below).
    readyProbe: config.get("readyProbe") as ReadyProbeKind | undefined,
    readyProbePath: config.get("readyProbePath"),
    logLevel: config.get("logLevel"),
    sidecarOptions,
    sidecarMemory: int("sidecarMemory", 1, 122_880),
    kmsKeyArn: config.get("kmsKeyArn"),
    imageTag: config.get("imageTag"),
    keepReleases: int("keepReleases", 1, 1000) ?? STACK_DEFAULTS.keepReleases,
  };
  if (settings.agentImage && config.getNumber("agentTtlSeconds") !== undefined)
    problems.push(
      "agentTtlSeconds is built into the agent image this stack builds; with agentImage, set ttl_seconds in that image's config instead",
    );
  if (!settings.agentImage && settings.agentHealthCheck)
    problems.push("agentHealthCheck is for agentImage; the agent this stack builds has its own probe");
  // What McpService would refuse, checked here too so that one preview reports every problem.
  problems.push(...serviceProblems(serviceShape(definedOnly(settings))));
  if (problems.length > 0) throw new PlanError(problems);
  return settings;
}

/** The settings without their unset keys, so that defaults fill them. */
function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Items that deliver a secret, each read by the sidecar's own parser for its flag and required to
 * name the secret by ARN (so the task role can be limited to it); a bad item is a problem under
 * `key`, never a throw.
 */
function parseSecretDeliveries<
  D extends { readonly ref: { secretId: string; jsonKey?: string | undefined } },
  T,
>(
  specs: readonly string[],
  key: string,
  parse: (spec: string) => D,
  build: (delivery: D) => T,
  problems: string[],
): T[] {
  const items: T[] = [];
  for (const spec of specs) {
    try {
      const delivery = parse(spec);
      if (!delivery.ref.secretId.startsWith("arn:aws"))
        throw new InvalidSecretSpec(
          `"${spec}": name the secret by ARN, so the task role can be limited to it`,
        );
      items.push(build(delivery));
    } catch (error) {
      if (!(error instanceof InvalidSecretSpec)) throw error;
      problems.push(`${key}: ${error.message}`);
    }
  }
  return items;
}

/**
 * Headers from secrets, as `Header-Name=SECRET_ARN[#jsonKey]` (the sidecar's --inject-header
 * syntax, read by its own parser); infra/examples/existing-server.ts reads the same shape.
 */
export function parseInjectHeaders(specs: readonly string[], problems: string[]): InjectedHeader[] {
  return parseSecretDeliveries(
    specs,
    "injectHeaders",
    parseHeaderDelivery,
    (d) => ({ header: d.header, secretArn: d.ref.secretId, jsonKey: d.ref.jsonKey }),
    problems,
  );
}

/** A stdio server's secret variables, as `NAME=SECRET_ARN[#jsonKey]` items (the sidecar's --secret-env). */
export function parseSecretEnvironment(specs: readonly string[], problems: string[]): SecretVariable[] {
  return parseSecretDeliveries(
    specs,
    "secretEnvironment",
    parseEnvDelivery,
    (d) => ({ name: d.name, secretArn: d.ref.secretId, jsonKey: d.ref.jsonKey }),
    problems,
  );
}

/**
 * The server's environment, as `NAME=value` items (Pulumi's config schema has no map type). A
 * malformed item is named by its position, never echoed: it may hold a value. Names and secrets
 * are checked with the rest (plan.ts).
 */
export function parseServerEnvironment(items: readonly string[], problems: string[]): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const [index, item] of items.entries()) {
    const eq = item.indexOf("=");
    if (eq === -1) {
      problems.push(`serverEnvironment[${index}] is not NAME=value`);
      continue;
    }
    const name = item.slice(0, eq);
    if (Object.hasOwn(environment, name)) problems.push(`serverEnvironment: ${name} is given more than once`);
    environment[name] = item.slice(eq + 1);
  }
  return environment;
}

/**
 * Further sidecar options, as `--option=value` items (as on the sidecar's command line), by flag
 * name; checked against the sidecar's option table with the rest (plan/sidecar-env.ts).
 */
export function parseSidecarOptions(items: readonly string[], problems: string[]): Record<string, string> {
  const options: Record<string, string> = {};
  for (const [index, item] of items.entries()) {
    const match = /^--([^=\s]+)=(.*)$/s.exec(item);
    if (!match) {
      problems.push(`sidecarOptions[${index}] is not --option=value`);
      continue;
    }
    const flag = match[1] as string;
    if (Object.hasOwn(options, flag)) problems.push(`sidecarOptions: --${flag} is given more than once`);
    options[flag] = match[2] as string;
  }
  return options;
}
