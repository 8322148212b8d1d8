// Runs the real Pulumi entry (infra/index.ts) the way the CLI would, under pulumi.runtime.setMocks:
// config from a stack file (plus overrides), every resource ECS/ELB/IAM/ECR would receive recorded
// with its inputs. One shared mocks module: each setMocks call replaces the last.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { vi } from "vitest";
import { parse as parseYaml } from "yaml";

export const ACCOUNT = "123456789012";
export const REGION = "us-east-1";
export const MOCK_RANDOM = "mock-random-value-never-in-outputs";

export interface Recorded {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  /** The names of the resources it depends on (dependsOn and data dependencies), as the engine gets them. */
  readonly dependsOn: string[];
}

export interface Program {
  readonly resources: Recorded[];
  readonly outputs: Record<string, unknown>;
  /** Resources of a type; the only one when `single`. */
  ofType(type: string): Recorded[];
  one(type: string, nameIncludes?: string): Recorded;
}

// ARNs in the shapes AWS gives them, so code that parses one (the sidecar's secret specs, IAM
// documents, the policy pack) meets what it will meet on AWS.
function arnFor(type: string, name: string): string {
  const at = `${REGION}:${ACCOUNT}`;
  switch (type) {
    case "aws:secretsmanager/secret:Secret":
      return `arn:aws:secretsmanager:${at}:secret:${name}-AbC123`;
    case "aws:iam/role:Role":
      return `arn:aws:iam::${ACCOUNT}:role/${name}`;
    case "aws:cloudwatch/logGroup:LogGroup":
      return `arn:aws:logs:${at}:log-group:${name}`;
    case "aws:ecr/repository:Repository":
      return `arn:aws:ecr:${at}:repository/${name}`;
    case "aws:ecs/cluster:Cluster":
      return `arn:aws:ecs:${at}:cluster/${name}`;
    case "aws:ecs/taskDefinition:TaskDefinition":
      return `arn:aws:ecs:${at}:task-definition/${name}:1`;
    case "aws:lb/loadBalancer:LoadBalancer":
      return `arn:aws:elasticloadbalancing:${at}:loadbalancer/app/${name}/0123456789abcdef`;
    case "aws:lb/targetGroup:TargetGroup":
      return `arn:aws:elasticloadbalancing:${at}:targetgroup/${name}/0123456789abcdef`;
    default: {
      const service = type.split(":")[1]?.split("/")[0] ?? "x";
      return `arn:aws:${service}:${at}:${name}`;
    }
  }
}

/** The stack file's config as setAllConfig wants it: namespaced keys, JSON for lists. */
/**
 * The config a stack's program receives from the CLI: Pulumi.yaml's declared defaults, then the
 * stack file, then `overrides` (null removes a key the file sets).
 */
export function stackConfig(file: string, overrides: Record<string, unknown> = {}): Record<string, string> {
  const read = (name: string) => parseYaml(readFileSync(new URL(`../../${name}`, import.meta.url), "utf8"));
  const project = read("Pulumi.yaml") as { name: string; config: Record<string, { default?: unknown }> };
  const defaults = Object.fromEntries(
    Object.entries(project.config)
      .filter(([, spec]) => spec.default !== undefined)
      .map(([key, spec]) => [`${project.name}:${key}`, spec.default]),
  );
  const document = read(file) as { config: Record<string, unknown> };
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...defaults, ...document.config, ...overrides })) {
    if (value === undefined || value === null) continue;
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return config;
}

/**
 * Waits until registrations stop: resources, then the component's registerOutputs, which reaches
 * the mock monitor after every output resolved. The next setMocks replaces the monitor, and a
 * straggler from this program would then hit a monitor that never saw its component.
 */
async function settle(resources: Recorded[]): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  let stable = 0;
  let last = -1;
  while (stable < 20) {
    await new Promise((resolve) => setImmediate(resolve));
    if (resources.length === last) stable++;
    else {
      stable = 0;
      last = resources.length;
    }
  }
}

async function resolve(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) return new Promise((r) => (value as pulumi.Output<unknown>).apply(r));
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const entries = await Promise.all(
      Object.entries(value).map(async ([k, v]) => [k, await resolve(v)] as const),
    );
    return Object.fromEntries(entries);
  }
  return value;
}

export async function runProgram(
  config: Record<string, string>,
  entry = "../../infra/index.ts",
): Promise<Program> {
  const resources: Recorded[] = [];
  pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs) {
        const inputs = args.inputs as Record<string, unknown>;
        resources.push({
          type: args.type,
          name: args.name,
          inputs,
          dependsOn: dependencies.get(`${args.type}::${args.name}`) ?? [],
        });
        const state: Record<string, unknown> = { ...inputs, arn: arnFor(args.type, args.name) };
        switch (args.type) {
          case "aws:ecr/repository:Repository":
            state.repositoryUrl = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${inputs.name}`;
            state.registryId = ACCOUNT;
            break;
          case "docker-build:index:Image":
            state.digest = `sha256:${createHash("sha256").update(args.name).digest("hex")}`;
            break;
          case "random:index/randomPassword:RandomPassword":
            state.result = MOCK_RANDOM;
            break;
          case "awsx:ec2:Vpc":
            state.vpcId = "vpc-0mock";
            state.publicSubnetIds = ["subnet-public-a", "subnet-public-b"];
            state.privateSubnetIds = ["subnet-private-a", "subnet-private-b"];
            break;
          case "aws:lb/loadBalancer:LoadBalancer":
            state.dnsName = `${args.name}.${REGION}.elb.amazonaws.com`;
            break;
          default:
            if (state.name === undefined) state.name = args.name;
        }
        return { id: `${args.name}-id`, state };
      },
      call(args: pulumi.runtime.MockCallArgs) {
        switch (args.token) {
          case "aws:index/getRegion:getRegion": {
            // The provider's region is the stack's aws:region, as on AWS (the ARNs above keep REGION).
            const region = config["aws:region"] ?? REGION;
            return { name: region, region, id: region };
          }
          case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
              userName: "AWS",
              password: "mock-registry-password",
              proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`,
            };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "test" };
          case "aws:ec2/getVpc:getVpc":
            // The VPC's CIDR, as awsx's default VPC has it (the sidecars' --peer-cidrs).
            return { ...args.inputs, cidrBlock: "10.0.0.0/16" };
          case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return { names: [`${REGION}a`, `${REGION}b`], zoneIds: ["use1-az1", "use1-az2"] };
          default:
            return args.inputs;
        }
      },
    },
    "mcp-sidecar",
    "dev",
    false,
  );
  // The mock's newResource does not see a resource's dependencies; the register request it answers
  // carries them (URNs), so read them there.
  const dependencies = new Map<string, string[]>();
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(
      req: { getType(): string; getName(): string; getDependenciesList(): string[] },
      cb: unknown,
    ): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    dependencies.set(
      `${req.getType()}::${req.getName()}`,
      req.getDependenciesList().map((urn) => urn.split("::").at(-1) as string),
    );
    return register(req, cb);
  };
  pulumi.runtime.setAllConfig(config);
  vi.resetModules();
  const program = (await import(/* @vite-ignore */ entry)) as Record<string, unknown>;
  const outputs = (await resolve(program)) as Record<string, unknown>;
  await settle(resources);
  // Waits for every RPC still queued (the component's registerOutputs above all), so nothing from
  // this program reaches the monitor of the next one.
  await pulumi.runtime.disconnect();
  return {
    resources,
    outputs,
    ofType: (type) => resources.filter((r) => r.type === type),
    one(type, nameIncludes) {
      const found = resources.filter(
        (r) => r.type === type && (nameIncludes === undefined || r.name.includes(nameIncludes)),
      );
      if (found.length !== 1)
        throw new Error(
          `expected one ${type}${nameIncludes ? ` named *${nameIncludes}*` : ""}, found ${found.length}`,
        );
      return found[0] as Recorded;
    },
  };
}
