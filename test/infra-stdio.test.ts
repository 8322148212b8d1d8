// A stdio server on Fargate: McpService with `server: { stdio }`, through the example program under
// Pulumi's mocks, the pure plan's sizing and checks, and the policy pack on what it produces.
import { describe, expect, it } from "vitest";
import type { ContainerDefinition } from "../infra/plan/containers.ts";
import { AGENT_MEMORY_MIB, STDIO_CHILD_MEMORY_MIB } from "../infra/plan/memory.ts";
import { stdioPlan } from "../infra/plan/stdio.ts";
import { ALL_POLICIES, boundedSidecarMemory } from "../infra/policy/rules.ts";
import { parseConfig } from "../proxy/config.ts";
import { check } from "./helpers/policy.ts";
import { type Program, runProgram } from "./helpers/pulumi-mocks.ts";

const EXAMPLE = "../../infra/examples/stdio-server.ts";
const TD = "aws:ecs/taskDefinition:TaskDefinition";
const SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:github-token-Ab12Cd";
const base = {
  "aws:region": "eu-west-1",
  "mcp-sidecar:sidecarImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-stdio-mcp@sha256:def",
  "mcp-sidecar:agentImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/secrets-agent@sha256:012",
  "mcp-sidecar:vpcId": "vpc-mine",
  "mcp-sidecar:publicSubnetIds": JSON.stringify(["subnet-a", "subnet-b"]),
  "mcp-sidecar:privateSubnetIds": JSON.stringify(["subnet-c", "subnet-d"]),
};

const containersOf = (program: Program) =>
  Object.fromEntries(
    (JSON.parse(program.one(TD).inputs.containerDefinitions as string) as ContainerDefinition[]).map((c) => [
      c.name,
      c,
    ]),
  );
const envOf = (c: ContainerDefinition | undefined) =>
  Object.fromEntries((c?.environment ?? []).map((e) => [e.name, e.value]));

describe("a stdio server on Fargate (infra/examples/stdio-server.ts)", async () => {
  const command = ["/nodejs/bin/node", "/opt/my server/index.js", "--greeting", 'it\'s me, "hi"'];
  const program = await runProgram(
    {
      ...base,
      "mcp-sidecar:serverCommand": JSON.stringify(command),
      "mcp-sidecar:serverEnvironment": JSON.stringify(["LOG_FORMAT=json", "ALLOWED=a,b,c"]),
      "mcp-sidecar:secretEnvironment": JSON.stringify([`GITHUB_TOKEN=${SECRET}#token`]),
    },
    EXAMPLE,
  );
  const containers = containersOf(program);
  const sidecar = containers.sidecar;
  const env = envOf(sidecar);

  it("runs the agent and the sidecar only: the server is the sidecar's children, no container or log group of its own", () => {
    expect(Object.keys(containers).sort()).toEqual(["secrets-agent", "sidecar"]);
    expect(sidecar?.dependsOn).toEqual([{ containerName: "secrets-agent", condition: "HEALTHY" }]);
    const groups = program.ofType("aws:cloudwatch/logGroup:LogGroup").map((g) => g.inputs.name);
    expect(groups.sort()).toEqual([
      "/mcp-sidecar/my-stdio-mcp/secrets-agent",
      "/mcp-sidecar/my-stdio-mcp/sidecar",
    ]);
  });

  it("gives the sidecar the command line its own parser splits back into the same argv, and no upstream or probe", () => {
    expect(env.MCP_SIDECAR_UPSTREAM).toBeUndefined();
    expect(env.MCP_SIDECAR_READY_PROBE).toBeUndefined();
    const parsed = parseConfig([], { ...env, AWS_TOKEN: "from-secrets" });
    expect(parsed.kind).toBe("config");
    if (parsed.kind !== "config") return;
    expect(parsed.config.stdioCommandLine).toEqual(command);
    expect(parsed.config.stdioBaseEnv).toMatchObject({ LOG_FORMAT: "json", ALLOWED: "a,b,c" });
    expect(parsed.config.stdioBaseEnv).not.toHaveProperty("NODE_OPTIONS");
    expect(parsed.config.secretEnv).toEqual([
      { name: "GITHUB_TOKEN", ref: expect.objectContaining({ secretId: SECRET, jsonKey: "token" }) },
    ]);
  });

  it("sizes sessions by memory: the container holds the sidecar and a child per session and spare, beside the agent", () => {
    // 2048 MiB task: the container gets all but the agent's, the children all but the sidecar's
    // 256, and the sessions what the spare and the stateless pool's two leave.
    const containerMiB = 2048 - AGENT_MEMORY_MIB;
    const children = Math.floor((containerMiB - 256) / STDIO_CHILD_MEMORY_MIB);
    expect(sidecar?.memory).toBe(containerMiB);
    expect(env.MCP_SIDECAR_MAX_SESSIONS).toBe(String(children - 1 - 2));
    expect(env.MCP_SIDECAR_STDIO_SPARES).toBe("1");
    expect(env.MCP_SIDECAR_STDIO_POOL).toBe("2");
    // V8 is still sized from the sidecar's own 256 MiB, not the container's limit.
    expect(env.NODE_OPTIONS).toBe("--max-old-space-size=132 --max-semi-space-size=4");
  });

  it("runs an init process in the sidecar's container, to reap what the children orphan", () => {
    expect(sidecar?.linuxParameters).toEqual({ initProcessEnabled: true });
  });

  it("runs one task: its sessions live in that task's children, and are not routed across tasks", () => {
    expect(program.one("aws:appautoscaling/target:Target").inputs).toMatchObject({
      minCapacity: 1,
      maxCapacity: 1,
    });
    expect(sidecar?.dockerLabels).toMatchObject({
      "mcp-sidecar.max-tasks": "1",
      "mcp-sidecar.server-sessions": "kept",
    });
  });

  it("grants the task role the children's secrets, by ARN", () => {
    const task = program.ofType("aws:iam/rolePolicy:RolePolicy").find((p) => p.name.endsWith("task-secrets"));
    expect(JSON.parse(task?.inputs.policy as string).Statement[0].Resource).toContain(SECRET);
  });

  it("passes every rule of the policy pack", () => {
    const violations: string[] = [];
    for (const resource of program.resources)
      for (const policy of ALL_POLICIES)
        for (const message of check(policy, resource.type, resource.inputs))
          violations.push(`${policy.name} ${resource.name}: ${message}`);
    expect(violations).toEqual([]);
  });

  it("refuses what cannot work, naming each setting, all at once", async () => {
    await expect(
      runProgram(
        {
          ...base,
          "mcp-sidecar:serverEnvironment": JSON.stringify(["NODE_OPTIONS=--inspect", "MCP_SIDECAR_PORT=1"]),
          "mcp-sidecar:secretEnvironment": JSON.stringify(["TOKEN=plain-name"]),
          "mcp-sidecar:maxSessions": "100",
        },
        EXAMPLE,
      ),
    ).rejects.toThrow(/secretEnvironment: "TOKEN=plain-name": name the secret by ARN/);
    const error = await runProgram(
      {
        ...base,
        "mcp-sidecar:serverEnvironment": JSON.stringify(["NODE_OPTIONS=--inspect", "MCP_SIDECAR_PORT=1"]),
        "mcp-sidecar:maxSessions": "100",
        "mcp-sidecar:memory": "1024",
      },
      EXAMPLE,
    ).catch((e: Error) => e);
    expect(String(error)).toContain(
      "server.environment: NODE_OPTIONS is the sidecar's own variable in its container, never a child's",
    );
    expect(String(error)).toContain("server.environment: MCP_SIDECAR_PORT is the sidecar's own variable");
    // Each problem once, under the setting at fault (not again as the sidecar's parser's).
    expect(String(error)).not.toContain("sidecarOptions");
    expect(String(error)).toMatch(
      /memory: the stdio server's 100 sessions and 3 other children \(server.spares and server.pool; one child each, server.childMemory 64 MiB\) need 6592 MiB, and the sidecar's container has 704 MiB for them .*: raise memory, or lower sidecarMemory, server.childMemory, server.spares, server.pool or server.maxSessions$/,
    );
  });
});

describe("stdioPlan (pure)", () => {
  const server = { stdio: ["/nodejs/bin/node", "/opt/server/index.js"] };

  it("fits as many sessions as the memory holds, less the spares; a given number must fit", () => {
    const { plan, problems } = stdioPlan(server, 1024, 256);
    expect(problems).toEqual([]);
    // 1024 - 64 (agent) - 256 (sidecar) = 704 MiB: 11 children of 64 MiB, one a spare, two the pool.
    expect(plan).toMatchObject({
      maxSessions: 8,
      pool: 2,
      spares: 1,
      memory: { containerMiB: 960, childrenMiB: 704 },
    });
    expect(stdioPlan({ ...server, spares: 3 }, 1024, 256).plan.maxSessions).toBe(6);
    expect(stdioPlan({ ...server, pool: 0 }, 1024, 256).plan.maxSessions).toBe(10);
    expect(stdioPlan({ ...server, childMemory: 128 }, 1024, 256).plan.maxSessions).toBe(2);
    expect(stdioPlan({ ...server, maxSessions: 11 }, 1024, 256).problems).toEqual([
      expect.stringMatching(
        /^memory: the stdio server's 11 sessions and 3 other children .* need 896 MiB, and the sidecar's container has 704 MiB/,
      ),
    ]);
    // Too small for even one session.
    expect(stdioPlan(server, 512, 400).problems).toEqual([
      expect.stringMatching(/^memory: the stdio server's 0 sessions and 3 other children/),
    ]);
  });

  it("refuses an empty command, clashing or repeated variables, and secrets not named by ARN", () => {
    const { problems } = stdioPlan(
      {
        stdio: [],
        environment: { "BAD-NAME": "x", AWS_TOKEN: "y", SHARED: "z" },
        secretEnvironment: [{ name: "SHARED", secretArn: "github-token" }],
        spares: -1,
        maxSessions: 0,
      },
      1024,
      256,
    );
    expect(problems).toEqual([
      expect.stringMatching(/^server.stdio is empty/),
      'server.environment: "BAD-NAME" is not a variable name',
      "server.environment: AWS_TOKEN is the sidecar's own variable in its container, never a child's",
      "server.secretEnvironment: SHARED is given more than once",
      'server.secretEnvironment: SHARED\'s secretArn "github-token" is not an ARN',
      "server.spares -1 must be a whole number >= 0",
      "server.maxSessions 0 must be a whole number >= 1",
    ]);
  });
});

describe("the policy pack on a stdio sidecar's container", () => {
  const td = (memory: number) => ({
    runtimePlatform: { cpuArchitecture: "ARM64" },
    memory: "1024",
    containerDefinitions: JSON.stringify([
      {
        name: "sidecar",
        memory,
        memoryReservation: 160,
        environment: [
          { name: "MCP_SIDECAR_STDIO", value: "'/nodejs/bin/node' '/opt/server/index.js'" },
          { name: "NODE_OPTIONS", value: "--max-old-space-size=132 --max-semi-space-size=4" },
        ],
      },
    ]),
  });

  it("knows it is the sidecar by its stdio server, and leaves the agent its share beside it", () => {
    expect(check(boundedSidecarMemory, TD, td(960))).toEqual([]);
    expect(check(boundedSidecarMemory, TD, td(1000))).toEqual([
      expect.stringMatching(
        /^container sidecar: the task's memory 1024 MiB leaves the agent 24 MiB .* it needs at least 64 MiB/,
      ),
    ]);
    expect(
      check(boundedSidecarMemory, TD, {
        ...td(960),
        containerDefinitions: td(960).containerDefinitions.replace(/"memory":960,/, ""),
      }),
    ).toEqual([expect.stringMatching(/has no hard memory limit/)]);
  });
});
