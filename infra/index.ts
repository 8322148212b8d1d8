// The Pulumi program (`pulumi up`, Pulumi.yaml main): ECR repositories, multi-arch images of the
// sidecar, the reference server and the Secrets Manager Agent, a VPC (or an existing one), and an
// McpService running them together on ARM64 Fargate. To run the sidecar beside your own MCP server
// image, set `serverImage` (see infra/examples/existing-server.ts for the component on its own).

import * as awsx from "@pulumi/awsx";
import * as pulumi from "@pulumi/pulumi";
import { buildImage, createRepository, releaseTag } from "./images.ts";
import { McpService } from "./mcp-service.ts";
import { SERVICE_DEFAULTS } from "./plan.ts";
import { REFERENCE_SERVER, readSettings } from "./settings.ts";

const settings = readSettings();
const stack = pulumi.getStack();
const project = pulumi.getProject();
const tag = releaseTag(settings.imageTag);

// ---- images: built here unless the stack names existing ones ----
/** An image the stack names, used as it is, or one built here into its own ECR repository. */
function stackImage(
  name: "sidecar" | "server" | "agent",
  existing: string | undefined,
  dockerfile: string,
  imageTag: string,
  buildArgs?: Record<string, string>,
): { ref: pulumi.Output<string>; digest: pulumi.Output<string> } {
  if (existing) return { ref: pulumi.output(existing), digest: pulumi.output("(existing image)") };
  const repository = createRepository(`${project}-${stack}-${name}`, settings.keepReleases);
  const built = buildImage(name, repository, dockerfile, imageTag, buildArgs);
  return { ref: built.ref, digest: built.image.digest };
}
const sidecar = stackImage("sidecar", undefined, "proxy/Dockerfile", tag);
const server = stackImage("server", settings.serverImage, "server/Dockerfile", tag);
// The TTL is built into the image's config, so it is part of the tag: a config-only change builds
// a new tag instead of pushing a different image under an immutable one.
const agent = stackImage(
  "agent",
  settings.agentImage,
  "agent/Dockerfile",
  `${tag}-ttl${settings.agentTtlSeconds}`,
  {
    AGENT_TTL_SECONDS: String(settings.agentTtlSeconds),
  },
);

// ---- network: an existing VPC, or a new one (awsx is enough here: only its subnet ids matter) ----
let network: {
  vpcId: pulumi.Input<string>;
  publicSubnetIds: pulumi.Input<pulumi.Input<string>[]>;
  privateSubnetIds: pulumi.Input<pulumi.Input<string>[]>;
};
if (settings.vpc) {
  network = settings.vpc;
} else {
  const vpc = new awsx.ec2.Vpc(`${project}-${stack}`, {
    numberOfAvailabilityZones: 2,
    // A dev stack with public tasks needs no NAT gateway (the largest fixed cost of a small stack).
    natGateways: {
      strategy:
        (settings.assignPublicIp ?? SERVICE_DEFAULTS.assignPublicIp)
          ? awsx.ec2.NatGatewayStrategy.None
          : awsx.ec2.NatGatewayStrategy.Single,
    },
  });
  network = {
    vpcId: vpc.vpcId,
    publicSubnetIds: vpc.publicSubnetIds,
    privateSubnetIds: vpc.privateSubnetIds,
  };
}

const service = new McpService(`${project}-${stack}`, {
  sidecarImage: sidecar.ref,
  agentImage: agent.ref,
  // An agent image of yours may have no probe (the upstream one is FROM scratch).
  ...(settings.agentImage ? { agentHealthCheckCommand: settings.agentHealthCheck ?? null } : {}),
  server: settings.serverImage
    ? {
        image: server.ref,
        port: settings.serverPort,
        healthCheckCommand: settings.serverHealthCheck,
        // An image we did not build: its user and whether it writes to its filesystem are the
        // stack's to say (the policy pack requires a non-root user).
        ...(settings.serverUser ? { user: settings.serverUser } : {}),
        readonlyRootFilesystem: settings.serverReadonlyRootFilesystem,
        environment: settings.serverEnvironment,
        stateless: settings.serverStateless,
      }
    : {
        image: server.ref,
        port: settings.serverPort,
        healthCheckCommand: ["/nodejs/bin/node", "/app/server/main.ts", "healthcheck"],
        environment: {
          ...settings.serverEnvironment,
          [REFERENCE_SERVER.portVariable]: String(settings.serverPort),
        },
        user: "65532:65532",
      },
  ...network,
  assignPublicIp: settings.assignPublicIp,
  ...(settings.sessionRouting !== undefined ? { sessionRouting: settings.sessionRouting } : {}),
  allowedCidrs: settings.allowedCidrs,
  certificateArn: settings.certificateArn,
  drainSeconds: settings.drainSeconds,
  architecture: settings.architecture,
  cpu: settings.cpu,
  memory: settings.memory,
  minCount: settings.minCount,
  maxCount: settings.maxCount,
  ...(settings.desiredCount !== undefined ? { desiredCount: settings.desiredCount } : {}),
  targetCpuPercent: settings.targetCpuPercent,
  auth: settings.auth,
  injectHeaders: settings.injectHeaders,
  kmsKeyArn: settings.kmsKeyArn,
  logRetentionDays: settings.logRetentionDays,
  logLevel: settings.logLevel,
  mcpPath: settings.mcpPath,
  readyProbe: settings.readyProbe,
  readyProbePath: settings.readyProbePath,
  sidecarOptions: settings.sidecarOptions,
  sidecarMemory: settings.sidecarMemory,
});

export const url = service.url;
export const clusterName = service.clusterName;
export const serviceName = service.serviceName;
export const apiKeySecretArn = service.apiKeySecretArn;
export const sessionKeySecretArn = service.sessionKeySecretArn;
/** Prints the API key (never a stack output itself). */
export const readApiKeyCommand = service.readApiKeyCommand;
export const agentTokenSecretArn = service.tokenSecretArn;
export const imageDigests = { sidecar: sidecar.digest, server: server.digest, agent: agent.digest };
export const images = { sidecar: sidecar.ref, server: server.ref, agent: agent.ref };
export const releaseTagUsed = tag;
