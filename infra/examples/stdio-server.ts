// Example: a stdio MCP server (most MCP servers are) on Fargate behind mcp-sidecar. There is no
// server container: the sidecar runs the server as its children, one per MCP session, inside its
// own container, so the sidecar image must hold the server. Build that image once FROM your
// sidecar image (examples/stdio-server/Dockerfile installs server-everything from npm):
//
//   docker build -f examples/stdio-server/Dockerfile --build-arg SIDECAR_IMAGE=<sidecar image> -t <repo>:<tag> .
//
//   Pulumi.yaml: main: infra/examples/stdio-server.ts    (or copy this into your own program)
//
// What you get beyond an HTTP server's stack: a child per session in a minimal environment (PATH,
// HOME, LANG, TZ, environment, secretEnvironment: never the sidecar's own variables); secrets as
// variables from Secrets Manager, a rotation reaching new children at once and running ones rolled
// between calls; as many sessions per task as the task's memory holds (server.maxSessions, from
// memory, sidecarMemory and server.childMemory: plan/memory.ts), and an init process in the
// container that reaps what the children orphan.
import * as pulumi from "@pulumi/pulumi";
import { McpService } from "../mcp-service.ts";
import { PlanError } from "../plan.ts";
import { parseSecretEnvironment, parseServerEnvironment } from "../settings.ts";

const config = new pulumi.Config();
const problems: string[] = [];
const environment = parseServerEnvironment(config.getObject<string[]>("serverEnvironment") ?? [], problems);
// NAME=SECRET_ARN[#jsonKey], as the sidecar's --secret-env takes them.
const secretEnvironment = parseSecretEnvironment(
  config.getObject<string[]>("secretEnvironment") ?? [],
  problems,
);
if (problems.length > 0) throw new PlanError(problems);

const service = new McpService("my-stdio-mcp", {
  server: {
    // argv, no shell (the image has none): the Dockerfile's server, run by the image's node.
    stdio: config.getObject<string[]>("serverCommand") ?? [
      "/nodejs/bin/node",
      "/opt/server/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
      "stdio",
    ],
    environment,
    secretEnvironment,
    maxSessions: config.getNumber("maxSessions"),
    childMemory: config.getNumber("childMemory"),
  },
  sidecarImage: config.require("sidecarImage"), // the image built FROM the sidecar image, with the server
  agentImage: config.require("agentImage"),
  vpcId: config.require("vpcId"),
  publicSubnetIds: config.requireObject<string[]>("publicSubnetIds"),
  privateSubnetIds: config.requireObject<string[]>("privateSubnetIds"),
  allowedCidrs: config.getObject<string[]>("allowedCidrs") ?? ["10.0.0.0/8"],
  certificateArn: config.get("certificateArn"),
  memory: config.getNumber("memory") ?? 2048, // a child per session: memory is sessions
  auth: { mode: "create" },
});

export const url = service.url;
export const readApiKeyCommand = service.readApiKeyCommand;
