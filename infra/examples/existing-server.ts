// Example: mcp-sidecar beside an MCP server image you already have, in a VPC you already have.
// The component takes image references; here the sidecar and agent are published images of yours
// (build them once from proxy/Dockerfile and agent/Dockerfile), the server is your own.
//
//   Pulumi.yaml: main: infra/examples/existing-server.ts    (or copy this into your own program)
//
// What you get: the API key as a Secrets Manager secret (read it with the readApiKeyCommand
// output), the sidecar's drain, readiness and hot-rotated secrets in front of your server, ALB +
// Fargate service + autoscaling. Your server must listen on 127.0.0.1:<port> (or 0.0.0.0) inside
// the task and answer MCP at mcpPath (default /mcp; or set readyProbe http or tcp for a server that
// does not); give it a health check command if its image has one.
//
// The list-valued keys take the stack config's shapes, read by the stack's own parsers
// (settings.ts), so a stack's config can be copied over as it is: injectHeaders as
// Header-Name=SECRET_ARN[#jsonKey], serverEnvironment as NAME=value, sidecarOptions as --option=value.
import * as pulumi from "@pulumi/pulumi";
import type { ReadyProbeKind } from "../../proxy/config.ts";
import { McpService } from "../mcp-service.ts";
import { PlanError } from "../plan.ts";
import { parseInjectHeaders, parseServerEnvironment, parseSidecarOptions } from "../settings.ts";

const config = new pulumi.Config();
const problems: string[] = [];
const injectHeaders = parseInjectHeaders(config.getObject<string[]>("injectHeaders") ?? [], problems);
const environment = parseServerEnvironment(config.getObject<string[]>("serverEnvironment") ?? [], problems);
const sidecarOptions = parseSidecarOptions(config.getObject<string[]>("sidecarOptions") ?? [], problems);
if (problems.length > 0) throw new PlanError(problems);

const service = new McpService("my-mcp", {
  server: {
    image: config.require("serverImage"), // e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-mcp-server@sha256:...
    port: config.getNumber("serverPort") ?? 3000,
    healthCheckCommand: config.getObject<string[]>("serverHealthCheck"),
    environment,
    user: config.get("serverUser") ?? "1000:1000", // your image's non-root user (the policy pack requires one)
    readonlyRootFilesystem: false,
  },
  sidecarImage: config.require("sidecarImage"),
  agentImage: config.require("agentImage"),
  vpcId: config.require("vpcId"),
  publicSubnetIds: config.requireObject<string[]>("publicSubnetIds"),
  privateSubnetIds: config.requireObject<string[]>("privateSubnetIds"),
  allowedCidrs: config.getObject<string[]>("allowedCidrs") ?? ["10.0.0.0/8"],
  certificateArn: config.get("certificateArn"),
  drainSeconds: 60, // long tool calls: the sidecar gets 60 s, ECS's stopTimeout becomes 65 s
  auth: { mode: "create" },
  // The upstream's own credential, from Secrets Manager, rotated without a redeploy:
  injectHeaders,
  mcpPath: config.get("mcpPath"),
  readyProbe: config.get<ReadyProbeKind>("readyProbe"),
  readyProbePath: config.get("readyProbePath"),
  sidecarOptions,
  logLevel: config.get("logLevel"),
  sidecarMemory: config.getNumber("sidecarMemory"),
});

export const url = service.url;
export const readApiKeyCommand = service.readApiKeyCommand;
