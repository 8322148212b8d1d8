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
}

export interface Program {
  readonly resources: Recorded[];
  readonly outputs: Record<string, unknown>;
  /** Resources of a type; the only one when `single`. */
  ofType(type: string): Recorded[];
  one(type: string, nameIncludes?: string): Recorded;
}

function arnFor(type: string, name: string): string {
  const service = type.split(":")[1]?.split("/")[0] ?? "x";
  return `arn:aws:${service}:${REGION}:${ACCOUNT}:${name}`;
}

/** The stack file's config as setAllConfig wants it: namespaced keys, JSON for lists. */
export function stackConfig(file: string, overrides: Record<string, unknown> = {}): Record<string, string> {
  const document = parseYaml(readFileSync(new URL(`../../${file}`, import.meta.url), "utf8")) as {
    config: Record<string, unknown>;
  };
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...document.config, ...overrides })) {
    if (value === undefined) continue;
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
        resources.push({ type: args.type, name: args.name, inputs });
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
          case "aws:index/getRegion:getRegion":
            return { name: REGION, region: REGION, id: REGION };
          case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
              userName: "AWS",
              password: "mock-registry-password",
              proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`,
            };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "test" };
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
