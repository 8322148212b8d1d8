// The policy pack as the Pulumi CLI runs it: Pulumi's own policy runner
// (@pulumi/pulumi/cmd/run-policy-pack, which registers ts-node and requires the pack's directory)
// starts infra/policy, and the test speaks the Analyzer gRPC protocol to it, as the engine does.
// The rules' logic is tested in infra-plan.test.ts; this proves the pack loads and enforces them.
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_POLICIES } from "../infra/policy/rules.ts";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
const services = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const messages = require("@pulumi/pulumi/proto/analyzer_pb.js");
const { Empty } = require("google-protobuf/google/protobuf/empty_pb.js");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js");

const POLICY_DIR = new URL("../infra/policy/", import.meta.url).pathname;
const RUNNER = require.resolve("@pulumi/pulumi/cmd/run-policy-pack");

let runner: ChildProcess;
let client: {
  getAnalyzerInfo: (req: unknown, cb: (e: Error | null, r: AnalyzerInfo) => void) => void;
  analyze: (req: unknown, cb: (e: Error | null, r: AnalyzeResponse) => void) => void;
  close: () => void;
};
interface AnalyzerInfo {
  getName(): string;
  getPoliciesList(): { getName(): string; getEnforcementlevel(): number }[];
}
interface AnalyzeResponse {
  getDiagnosticsList(): { getPolicyname(): string; getMessage(): string }[];
}

const call = <T>(method: (req: unknown, cb: (e: Error | null, r: T) => void) => void, req: unknown) =>
  new Promise<T>((resolve, reject) => method.call(client, req, (e, r) => (e ? reject(e) : resolve(r))));

beforeAll(async () => {
  // The engine address is unused until the pack logs through the engine; the pack answers on the
  // port it prints.
  runner = spawn(process.execPath, [RUNNER, "127.0.0.1:1", "."], { cwd: POLICY_DIR, stdio: "pipe" });
  let stderr = "";
  runner.stderr?.on("data", (d) => {
    stderr += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    runner.stdout?.on("data", (d) => {
      out += d;
      const match = /^(\d+)\s*$/m.exec(out);
      if (match) resolve(Number(match[1]));
    });
    runner.on("exit", (code) => reject(new Error(`policy runner exited ${code}: ${stderr}`)));
  });
  client = new services.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 30_000);

afterAll(() => {
  client?.close();
  runner?.kill("SIGKILL");
});

function analyzeRequest(type: string, name: string, properties: Record<string, unknown>) {
  return new messages.AnalyzeRequest()
    .setType(type)
    .setName(name)
    .setUrn(`urn:pulumi:dev::mcp-sidecar::${type}::${name}`)
    .setProperties(Struct.fromJavaScript(properties))
    .setOptions(new messages.AnalyzerResourceOptions());
}

describe("infra/policy under Pulumi's policy runner", () => {
  it("loads and lists every rule: ARM64 advisory (x86 is a config choice), the rest mandatory", async () => {
    const info = await call(client.getAnalyzerInfo, new Empty());
    expect(info.getName()).toBe("mcp-sidecar");
    // The analyzer protocol's EnforcementLevel: ADVISORY = 0, MANDATORY = 1.
    expect(
      Object.fromEntries(info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()])),
    ).toEqual({
      "mcp-sidecar-arm64-tasks": 0,
      "mcp-sidecar-ecr-immutable-scanned": 1,
      "mcp-sidecar-non-root": 1,
      "mcp-sidecar-no-secret-env": 1,
      "mcp-sidecar-coherent-drain": 1,
      "mcp-sidecar-bounded-sidecar-memory": 1,
      "mcp-sidecar-no-iam-wildcard-on-secrets": 1,
      "mcp-sidecar-session-routing": 1,
    });
    expect(info.getPoliciesList()).toHaveLength(ALL_POLICIES.length);
  });

  it("reports an x86 task running as root with a secret in plain env and an unbounded sidecar, and passes a compliant one", async () => {
    const container = (over: Record<string, unknown>) => ({
      name: "server",
      image: "x@sha256:1",
      user: "65532:65532",
      stopTimeout: 30,
      environment: [{ name: "LOG_LEVEL", value: "info" }],
      ...over,
    });
    const bad = await call(
      client.analyze,
      analyzeRequest("aws:ecs/taskDefinition:TaskDefinition", "bad", {
        runtimePlatform: { cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" },
        memory: "1024",
        containerDefinitions: JSON.stringify([
          container({ user: "root", environment: [{ name: "DB_PASSWORD", value: "hunter2" }] }),
          // The sidecar with no memory limit of its own, and no session routing for its 3 tasks.
          container({
            name: "sidecar",
            environment: [{ name: "MCP_SIDECAR_UPSTREAM", value: "http://127.0.0.1:3000" }],
            dockerLabels: { "mcp-sidecar.max-tasks": "3", "mcp-sidecar.server-sessions": "kept" },
          }),
        ]),
      }),
    );
    const reported = bad.getDiagnosticsList().map((d) => d.getPolicyname());
    expect(reported).toEqual(
      expect.arrayContaining([
        "mcp-sidecar-arm64-tasks",
        "mcp-sidecar-non-root",
        "mcp-sidecar-no-secret-env",
        "mcp-sidecar-bounded-sidecar-memory",
        "mcp-sidecar-session-routing",
      ]),
    );
    expect(
      bad
        .getDiagnosticsList()
        .map((d) => d.getMessage())
        .join("\n"),
    ).not.toContain("hunter2");

    const good = await call(
      client.analyze,
      analyzeRequest("aws:ecs/taskDefinition:TaskDefinition", "good", {
        runtimePlatform: { cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" },
        memory: "1024",
        containerDefinitions: JSON.stringify([
          container({}),
          container({
            name: "sidecar",
            memory: 256,
            memoryReservation: 160,
            environment: [
              { name: "MCP_SIDECAR_UPSTREAM", value: "http://127.0.0.1:3000" },
              { name: "NODE_OPTIONS", value: "--max-old-space-size=132 --max-semi-space-size=4" },
            ],
          }),
        ]),
      }),
    );
    expect(good.getDiagnosticsList().map((d) => `${d.getPolicyname()}: ${d.getMessage()}`)).toEqual([]);
  });
});
