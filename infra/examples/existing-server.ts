// Example: mcp-sidecar beside an MCP server image you already have, in a VPC you already have.
// The component takes image references; here the sidecar and agent are published images of yours
// (build them once from proxy/Dockerfile and agent/Dockerfile), the server is your own.
//
//   Pulumi.yaml: main: infra/examples/existing-server.ts    (or copy this into your own program)
//
// What you get: the API key as a Secrets Manager secret (read it with the readApiKeyCommand
// output), the sidecar's drain, readiness and hot-rotated secrets in front of your server, ALB +
// Fargate service + autoscaling. Your server must listen on 127.0.0.1:<port> (or 0.0.0.0) inside
// the task and answer MCP at /mcp; give it a health check command if its image has one.
import * as pulumi from "@pulumi/pulumi";
import { McpService } from "../mcp-service.ts";

const config = new pulumi.Config();

const service = new McpService("my-mcp", {
  server: {
    image: config.require("serverImage"), // e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-mcp-server@sha256:...
    port: config.getNumber("serverPort") ?? 3000,
    healthCheckCommand: config.getObject<string[]>("serverHealthCheck"),
    environment: { LOG_LEVEL: "info" },
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
  injectHeaders:
    config.getObject<{ header: string; secretArn: string; jsonKey?: string }[]>("injectHeaders") ?? [],
});

export const url = service.url;
export const readApiKeyCommand = service.readApiKeyCommand;
