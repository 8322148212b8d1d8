// The pure plan (infra/plan.ts and infra/plan/), the policy pack's rules (infra/policy/rules.ts) on passing and
// failing inputs (infra.test.ts runs them on the real dev stack), and the second example under mocks.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  type ContainerDefinition,
  containerDefinitions,
  type StdioServer,
  type TaskPlanInput,
} from "../infra/plan/containers.ts";
import { taskRolePolicy } from "../infra/plan/iam.ts";
import {
  OWNED_SIDECAR_OPTIONS,
  readiness,
  type SidecarEnvInput,
  sidecarConfigProblems,
  sidecarEnvironment,
  sidecarOptionProblems,
} from "../infra/plan/sidecar-env.ts";
import { stdioPlan } from "../infra/plan/stdio.ts";
import {
  ecrLifecyclePolicy,
  FARGATE_MAX_STOP_TIMEOUT_SECONDS,
  fargateSizeProblems,
  PlanError,
  planTiming,
  SERVER_MIN_MEMORY_MIB,
  SERVICE_DEFAULTS,
  SIDECAR_MEASURED_WORKING_SET_MIB,
  SIDECAR_MIN_MARGIN_MIB,
  SIDECAR_MIN_OLD_SPACE_MIB,
  SIDECAR_NON_HEAP_MIB,
  SIDECAR_YOUNG_GENERATION_MIB,
  type SidecarMemory,
  serviceProblems,
  serviceShape,
  sidecarMemoryMargin,
  sidecarMemoryPlan,
  sidecarMemoryProblems,
  sidecarNodeOptions,
  v8HeapFlags,
} from "../infra/plan.ts";
import {
  arm64Tasks,
  boundedSidecarMemory,
  coherentDrain,
  ecrImmutableScanned,
  nonRootContainers,
  noSecretEnvironment,
  noSecretsWildcard,
  sessionRoutingAcrossTasks,
} from "../infra/policy/rules.ts";
import { parseInjectHeaders, parseServerEnvironment, parseSidecarOptions } from "../infra/settings.ts";
import { envName, OPTIONS } from "../proxy/config.ts";
import { check } from "./helpers/policy.ts";
import { type Program, runProgram } from "./helpers/pulumi-mocks.ts";

describe("planTiming", () => {
  it("derives every timing from the one drain setting, for every valid value", () => {
    for (let drain = 1; drain <= FARGATE_MAX_STOP_TIMEOUT_SECONDS - 5; drain++) {
      const timing = planTiming(drain);
      expect(timing.stopTimeoutSeconds).toBe(drain + 5);
      expect(timing.stopTimeoutSeconds).toBeLessThanOrEqual(FARGATE_MAX_STOP_TIMEOUT_SECONDS);
      expect(timing.deregistrationDelaySeconds).toBe(drain);
      expect(timing.albIdleTimeoutSeconds).toBeGreaterThan(timing.sseKeepaliveSeconds);
    }
  });

  it.each([116, 120, 300])("rejects drainSeconds %d: it cannot fit Fargate's 120 s", (drain) => {
    expect(() => planTiming(drain)).toThrow(PlanError);
    expect(() => planTiming(drain)).toThrow("use at most 115");
  });

  it("collects every problem at once", () => {
    try {
      planTiming(0.5, 15, 10);
      expect.unreachable();
    } catch (error) {
      expect((error as PlanError).problems).toHaveLength(2);
    }
  });
});

describe("fargateSizeProblems", () => {
  it.each([
    [256, 512],
    [256, 2048],
    [512, 1024],
    [1024, 8192],
    [4096, 30720],
    [8192, 61440],
  ])("accepts %d/%d", (cpu, memory) => expect(fargateSizeProblems(cpu, memory)).toEqual([]));

  it.each([
    [256, 4096],
    [512, 512],
    [1024, 1024],
    [300, 1024],
    [8192, 18432],
  ])("rejects %d/%d", (cpu, memory) => expect(fargateSizeProblems(cpu, memory)).toHaveLength(1));
});

describe("taskRolePolicy and ecrLifecyclePolicy", () => {
  it("grants exactly the given ARNs, deduplicated, and refuses wildcards", () => {
    const doc = taskRolePolicy([
      "arn:aws:secretsmanager:us-east-1:1:secret:b",
      "arn:aws:secretsmanager:us-east-1:1:secret:a",
      "arn:aws:secretsmanager:us-east-1:1:secret:b",
    ]);
    expect(doc.Statement[0]?.Resource).toEqual([
      "arn:aws:secretsmanager:us-east-1:1:secret:a",
      "arn:aws:secretsmanager:us-east-1:1:secret:b",
    ]);
    expect(() => taskRolePolicy(["arn:aws:secretsmanager:us-east-1:1:secret:*"])).toThrow("not an exact ARN");
    expect(() => taskRolePolicy([])).toThrow(PlanError);
  });

  it("keeps releases by tag and has no rule on untagged images", () => {
    const policy = ecrLifecyclePolicy(5) as { rules: { selection: Record<string, unknown> }[] };
    expect(policy.rules).toHaveLength(1);
    expect(policy.rules[0]?.selection).toEqual({
      tagStatus: "tagged",
      tagPrefixList: ["git-"],
      countType: "imageCountMoreThan",
      countNumber: 5,
    });
  });
});

describe("the sidecar's environment and options (plan/sidecar-env.ts)", () => {
  const input = (over: Partial<SidecarEnvInput> = {}): SidecarEnvInput => ({
    ports: { server: 3000, sidecar: 8080, metrics: 9090 },
    agentPort: 2773,
    timing: planTiming(25),
    logLevel: "info",
    readiness: readiness("mcp", undefined, "/mcp"),
    apiKeySecretArn: undefined,
    injectHeaders: [],
    options: {},
    ...over,
  });

  it("defaults the probe path to the MCP path, and gives the tcp probe none", () => {
    expect(readiness("mcp", undefined, "/v1/mcp")).toEqual({ probe: "mcp", path: "/v1/mcp" });
    expect(readiness("http", "/healthz", "/v1/mcp")).toEqual({ probe: "http", path: "/healthz" });
    expect(readiness("tcp", undefined, "/v1/mcp")).toEqual({ probe: "tcp", path: undefined });
  });

  it("owns every option it sets: a stack cannot override the task's wiring, and the table cannot drift", () => {
    const flags = new Set(OPTIONS.map((spec) => spec.flag));
    expect([...OWNED_SIDECAR_OPTIONS.keys()].filter((flag) => !flags.has(flag))).toEqual([]);
    const set = sidecarEnvironment(
      input({
        apiKeySecretArn: "arn:aws:secretsmanager:us-east-1:1:secret:k",
        injectHeaders: [{ header: "X-Key", secretArn: "arn:aws:secretsmanager:us-east-1:1:secret:h" }],
      }),
    );
    const byEnv = new Map(OPTIONS.map((spec) => [envName(spec.flag), spec.flag]));
    expect(Object.keys(set).filter((name) => !OWNED_SIDECAR_OPTIONS.has(byEnv.get(name) ?? name))).toEqual(
      [],
    );
  });

  it("passes further options as MCP_SIDECAR_* variables; the component's own always win", () => {
    const env = sidecarEnvironment(input({ options: { "ready-cache": "5s", "drain-timeout": "99s" } }));
    expect(env.MCP_SIDECAR_READY_CACHE).toBe("5s");
    expect(env.MCP_SIDECAR_DRAIN_TIMEOUT).toBe("25s");
  });

  it("checks each option against the sidecar's table: unknown, owned (naming the owner), or a bad value", () => {
    expect(
      sidecarOptionProblems({ "ready-cache": "5s", "max-body-size": "8MiB", "health-path": "/h" }),
    ).toEqual([]);
    expect(
      sidecarOptionProblems({
        constructor: "x",
        "inject-header": "X=arn:aws:secretsmanager:us-east-1:1:secret:h",
        "keep-alive-timeout": "70s",
        "max-body-size": "big",
      }),
    ).toEqual([
      "sidecarOptions: --constructor is not an option of the sidecar (mcp-sidecar --help lists them)",
      "sidecarOptions: --inject-header is set by injectHeaders",
      "sidecarOptions: --keep-alive-timeout is set by albIdleTimeoutSeconds (5 s above it)",
      'sidecarOptions: --max-body-size: "big" is not a size (use e.g. 65536, 64KiB, 4MiB)',
    ]);
  });

  it("hands the whole environment to the sidecar's parser for what no single option shows", () => {
    expect(sidecarConfigProblems(sidecarEnvironment(input()))).toEqual([]);
    expect(
      sidecarConfigProblems(
        sidecarEnvironment(input({ options: { "request-timeout": "1s", "headers-timeout": "5s" } })),
      ),
    ).toEqual([
      "sidecarOptions: the sidecar refuses --request-timeout must be at least --headers-timeout (or 0 for off)",
    ]);
  });
});

describe("the stack's list parsers (settings.ts), shared with the example", () => {
  it("reads NAME=value and --option=value items, naming a malformed item by position, never echoing it", () => {
    const problems: string[] = [];
    expect(parseServerEnvironment(["A=1", "B==2", "C=", "s3cr3t"], problems)).toEqual({
      A: "1",
      B: "=2",
      C: "",
    });
    expect(
      parseSidecarOptions(["--ready-cache=5s", "--x=a=b", "ready-cache=5s", "--s3cr3t"], problems),
    ).toEqual({
      "ready-cache": "5s",
      x: "a=b",
    });
    expect(problems).toEqual([
      "serverEnvironment[3] is not NAME=value",
      "sidecarOptions[2] is not --option=value",
      "sidecarOptions[3] is not --option=value",
    ]);
  });

  it("reads injectHeaders as Header-Name=SECRET_ARN[#jsonKey], by ARN only", () => {
    const problems: string[] = [];
    expect(
      parseInjectHeaders(
        ["X-Key=arn:aws:secretsmanager:us-east-1:123456789012:secret:h-AbCdEf#key", "X-Other=name-only"],
        problems,
      ),
    ).toEqual([
      {
        header: "X-Key",
        secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:h-AbCdEf",
        jsonKey: "key",
      },
    ]);
    expect(problems).toEqual([
      'injectHeaders: "X-Other=name-only": name the secret by ARN, so the task role can be limited to it',
    ]);
  });
});

describe("the sidecar's memory (plan/memory.ts)", () => {
  it("by default: 256 MiB hard, 160 reserved, 132 old space + 12 young generation + 80 outside the heap + 32 margin", () => {
    const plan = sidecarMemoryPlan(SERVICE_DEFAULTS.sidecarMemory);
    expect(plan).toEqual({ memoryMiB: 256, reservationMiB: 160, maxOldSpaceMiB: 132, semiSpaceMiB: 4 });
    expect(
      plan.maxOldSpaceMiB + SIDECAR_YOUNG_GENERATION_MIB + SIDECAR_NON_HEAP_MIB + SIDECAR_MIN_MARGIN_MIB,
    ).toBeLessThanOrEqual(plan.memoryMiB);
    expect(plan.reservationMiB).toBeGreaterThanOrEqual(SIDECAR_MEASURED_WORKING_SET_MIB);
    expect(plan.reservationMiB).toBeLessThan(plan.memoryMiB);
    expect(sidecarMemoryProblems(plan, SERVICE_DEFAULTS.memory)).toEqual([]);
    // Fargate's smallest task (512 MiB) still leaves the server and the agent their 256.
    expect(sidecarMemoryProblems(plan, 512)).toEqual([]);
  });

  it.each([232, 256, 384, 1024, 8192])("a %d MiB limit is coherent: V8's limits fit under it", (limit) => {
    const plan = sidecarMemoryPlan(limit);
    expect(sidecarMemoryProblems(plan, limit + SERVER_MIN_MEMORY_MIB)).toEqual([]);
    expect(plan.maxOldSpaceMiB).toBeGreaterThanOrEqual(SIDECAR_MIN_OLD_SPACE_MIB);
    expect(
      plan.maxOldSpaceMiB + 3 * plan.semiSpaceMiB + SIDECAR_NON_HEAP_MIB + sidecarMemoryMargin(limit),
    ).toBe(limit);
  });

  it("refuses incoherent numbers, each naming its setting", () => {
    const coherent = sidecarMemoryPlan(256);
    const problems = (over: Partial<SidecarMemory>, task = 1024) =>
      sidecarMemoryProblems({ ...coherent, ...over }, task);
    expect(problems({ memoryMiB: 219, maxOldSpaceMiB: sidecarMemoryPlan(219).maxOldSpaceMiB })).toEqual([
      "sidecarMemory 219 MiB leaves V8 an old space of 95 MiB, below the 96 MiB the sidecar needs (the limit holds the old space, the 12 MiB young generation, 80 MiB outside the heap and a margin)",
    ]);
    expect(problems({ maxOldSpaceMiB: 133 })).toEqual([
      "sidecarMemory 256 MiB: V8's heap limit (133 MiB old space + 12 MiB young generation) and 80 MiB outside the heap leave 31 MiB under it, below the 32 MiB margin",
    ]);
    expect(problems({ semiSpaceMiB: 16 })).toHaveLength(1);
    expect(problems({ reservationMiB: 144 })).toEqual([
      "the sidecar's memory reservation 144 MiB is below its measured working set (145 MiB with 2,000 idle SSE streams)",
    ]);
    // ECS requires memory above memoryReservation.
    expect(problems({ reservationMiB: 256 })).toEqual([
      "sidecarMemory 256 MiB must be above the sidecar's memory reservation (256 MiB)",
    ]);
    expect(problems({}, 511)).toEqual([
      "memory 511 MiB leaves the server and the agent 255 MiB beside the sidecar's 256 MiB (sidecarMemory); they need at least 256 MiB: raise memory or lower sidecarMemory",
    ]);
    expect(problems({ memoryMiB: 256.5 })).toEqual(["sidecarMemory 256.5 must be a whole number of MiB"]);
  });

  it("gives V8 its limits through NODE_OPTIONS, which Node accepts there: heap limit = old space + 3 semi-spaces", () => {
    const plan = sidecarMemoryPlan(256);
    const nodeOptions = sidecarNodeOptions(plan);
    expect(v8HeapFlags(nodeOptions)).toEqual({ oldSpaceMiB: 132, semiSpaceMiB: 4 });
    expect(v8HeapFlags("--max-semi-space-size=4")).toEqual({ semiSpaceMiB: 4 });
    // The Node that runs these tests is the image's major (24); a flag NODE_OPTIONS refuses exits 9.
    const limit = execFileSync(
      process.execPath,
      ["-e", "process.stdout.write(String(require('v8').getHeapStatistics().heap_size_limit))"],
      { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: "utf8" },
    );
    expect(Number(limit) / 2 ** 20).toBe(plan.maxOldSpaceMiB + SIDECAR_YOUNG_GENERATION_MIB);
  });
});

// ---- policies ----

const TD = "aws:ecs/taskDefinition:TaskDefinition";
const td = (containers: unknown[], arch = "ARM64") => ({
  runtimePlatform: { cpuArchitecture: arch },
  containerDefinitions: JSON.stringify(containers),
});

const taskPlan = (over: Partial<TaskPlanInput> = {}) =>
  containerDefinitions({
    region: "us-east-1",
    timing: planTiming(25),
    sidecarImage: "s",
    agentImage: "a",
    server: { image: "srv", port: 3000, user: "65532:65532" },
    sidecarPort: 8080,
    metricsPort: 9090,
    tokenSecretArn: "arn:aws:secretsmanager:us-east-1:1:secret:t",
    apiKeySecretArn: "arn:aws:secretsmanager:us-east-1:1:secret:k",
    injectHeaders: [],
    logGroups: { agent: "a", server: "s", sidecar: "c" },
    logLevel: "info",
    readiness: { probe: "mcp", path: "/mcp" },
    sidecarOptions: {},
    sidecarMemory: sidecarMemoryPlan(256),
    maxTasks: 1,
    ...over,
  });

describe("policy pack rules", () => {
  it("arm64Tasks", () => {
    expect(check(arm64Tasks, TD, td([]))).toEqual([]);
    expect(check(arm64Tasks, TD, td([], "X86_64"))).toEqual([
      "runtimePlatform.cpuArchitecture is X86_64, not ARM64",
    ]);
    expect(check(arm64Tasks, "aws:s3/bucket:Bucket", {})).toEqual([]);
  });

  it("ecrImmutableScanned", () => {
    const repo = "aws:ecr/repository:Repository";
    expect(
      check(ecrImmutableScanned, repo, {
        imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
        imageScanningConfiguration: { scanOnPush: true },
      }),
    ).toEqual([]);
    expect(check(ecrImmutableScanned, repo, { imageTagMutability: "MUTABLE" })).toEqual([
      "imageTagMutability is MUTABLE",
      "imageScanningConfiguration.scanOnPush is not true",
    ]);
    expect(
      check(ecrImmutableScanned, repo, {
        imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters: [
          { filter: "buildcache*", filterType: "WILDCARD" },
          { filter: "*", filterType: "WILDCARD" },
        ],
        imageScanningConfiguration: { scanOnPush: true },
      }),
    ).toEqual(['imageTagMutabilityExclusionFilters: "*" is not the build cache tag']);
  });

  it("nonRootContainers", () => {
    expect(check(nonRootContainers, TD, td([{ name: "a", user: "65532:65532" }]))).toEqual([]);
    expect(
      check(
        nonRootContainers,
        TD,
        td([{ name: "a", user: "0" }, { name: "b" }, { name: "c", user: "root:root" }]),
      ),
    ).toHaveLength(3);
  });

  it("noSecretEnvironment", () => {
    const ok = [
      {
        name: "a",
        environment: [
          { name: "MCP_SIDECAR_AUTH_SECRET", value: "arn:aws:secretsmanager:us-east-1:1:secret:k" },
          { name: "MCP_SIDECAR_SECRETS_AGENT", value: "http://127.0.0.1:2773" },
          { name: "PORT", value: "1" },
        ],
      },
    ];
    expect(check(noSecretEnvironment, TD, td(ok))).toEqual([]);
    const bad = [
      {
        name: "a",
        environment: [
          { name: "API_KEY", value: "abc" },
          { name: "DB_PASSWORD", value: "x" },
          { name: "AWS_TOKEN", value: "t" },
          { name: "DATABASE_URL", value: "postgres://app:hunter2@db:5432/app" },
          { name: "MCP_SIDECAR_UPSTREAM", value: "https://user:pw@upstream" },
        ],
      },
    ];
    const violations = check(noSecretEnvironment, TD, td(bad));
    expect(violations).toHaveLength(5);
    expect(violations.join("\n")).not.toMatch(/hunter2|pw@/);
  });

  it("coherentDrain", () => {
    const drain = (value: string, stopTimeout?: number) => [
      { name: "sidecar", stopTimeout, environment: [{ name: "MCP_SIDECAR_DRAIN_TIMEOUT", value }] },
    ];
    expect(check(coherentDrain, TD, td(drain("25s", 30)))).toEqual([]);
    expect(check(coherentDrain, TD, td(drain("25s")))).toEqual([]);
    expect(check(coherentDrain, TD, td(drain("30s", 30)))).toHaveLength(1);
    expect(check(coherentDrain, TD, td(drain("2m", 121)))).toHaveLength(2);
  });

  it("sessionRoutingAcrossTasks: on the task plan itself, for one task, several, a stateless server and a stdio one", () => {
    const rule = (over: Partial<TaskPlanInput>) => check(sessionRoutingAcrossTasks, TD, td(taskPlan(over)));
    const routing = {
      sessionSecretArn: "arn:aws:secretsmanager:us-east-1:1:secret:s",
      peerCidr: "10.0.0.0/16",
    };
    expect(rule({ maxTasks: 1 })).toEqual([]);
    expect(rule({ maxTasks: 4, routing })).toEqual([]);
    expect(rule({ maxTasks: 4 })).toEqual([
      "container sidecar: up to 4 tasks run a server that keeps sessions, and session routing is off (MCP_SIDECAR_SESSION_ROUTING): a session's requests on another task would get 404",
    ]);
    expect(rule({ maxTasks: 4, server: { image: "srv", port: 3000, user: "1:1", stateless: true } })).toEqual(
      [],
    );
    const stdio = (over: Partial<StdioServer>) =>
      stdioPlan({ stdio: ["/nodejs/bin/node", "/opt/server/index.js"], ...over }, 1024, 256).plan;
    expect(rule({ maxTasks: 1, server: stdio({}) })).toEqual([]);
    expect(rule({ maxTasks: 3, server: stdio({}) })).toEqual([
      "container sidecar: up to 3 tasks run a stdio server whose sessions live in one task's children, and stdio sessions are not routed across tasks: a session's requests on another task would get 404",
    ]);
    expect(rule({ maxTasks: 3, server: stdio({ stateless: true }) })).toEqual([]);
  });

  it("the preview refuses a stdio server with sessions on more than one task, as the pack does", () => {
    const shape = (maxCount: number | undefined, statelessServer: boolean) =>
      serviceShape({
        allowedCidrs: ["10.0.0.0/8"],
        auth: { mode: "create" },
        serverPort: undefined,
        stdio: { stdio: ["/nodejs/bin/node", "/opt/server/index.js"] },
        maxCount,
        statelessServer,
      });
    const problems = (maxCount: number | undefined, statelessServer: boolean) =>
      serviceProblems(shape(maxCount, statelessServer));
    expect(problems(1, false)).toEqual([]);
    // Unset, its maxCount is its minCount: one task, unless it is declared stateless.
    expect(shape(undefined, false).maxCount).toBe(1);
    expect(shape(undefined, true).maxCount).toBe(SERVICE_DEFAULTS.maxCount);
    expect(problems(2, true)).toEqual([]);
    expect(problems(2, false)).toEqual([
      "up to 2 tasks (maxCount, or minCount when maxCount is unset) with a stdio server: its sessions live in one task's children and are not routed across tasks, so a session's requests the load balancer sends to another task would get 404 (keep minCount and maxCount at 1, or declare server.stateless if its clients speak 2026-07-28 only)",
    ]);
  });

  it("boundedSidecarMemory", () => {
    const sidecar = (
      over: Record<string, unknown>,
      nodeOptions = "--max-old-space-size=132 --max-semi-space-size=4",
    ) => [
      { name: "server", environment: [] },
      {
        name: "sidecar",
        memory: 256,
        memoryReservation: 160,
        environment: [
          { name: "MCP_SIDECAR_UPSTREAM", value: "http://127.0.0.1:3000" },
          { name: "NODE_OPTIONS", value: nodeOptions },
        ],
        ...over,
      },
    ];
    const rule = (containers: unknown[], memory = "1024") =>
      check(boundedSidecarMemory, TD, { ...td(containers), memory });
    expect(rule(sidecar({}))).toEqual([]);
    expect(rule(sidecar({ memory: undefined }))).toEqual([
      "container sidecar has no hard memory limit and reservation (memory, memoryReservation): it could take the server's memory",
    ]);
    expect(rule(sidecar({}, "--max-semi-space-size=8"))).toEqual([
      "container sidecar: NODE_OPTIONS sets no --max-old-space-size and --max-semi-space-size, so V8 does not size its heap under the memory limit",
    ]);
    expect(rule(sidecar({}, "--max-old-space-size=240 --max-semi-space-size=8"))).toEqual([
      "container sidecar: memory 256 MiB: V8's heap limit (240 MiB old space + 24 MiB young generation) and 80 MiB outside the heap leave -88 MiB under it, below the 32 MiB margin",
    ]);
    expect(rule(sidecar({}), "512")).toEqual([]);
    expect(rule(sidecar({ memory: 512 }), "512")).toEqual([
      expect.stringMatching(
        /^container sidecar: the task's memory 512 MiB leaves the server and the agent 0 MiB/,
      ),
    ]);
    // Only the sidecar's container: the server's memory is bounded by the task's.
    expect(rule([{ name: "server", environment: [{ name: "PORT", value: "3000" }] }])).toEqual([]);
  });

  it("noSecretsWildcard", () => {
    const policy = (statement: unknown) => ({
      policy: JSON.stringify({ Version: "2012-10-17", Statement: [statement] }),
    });
    const rp = "aws:iam/rolePolicy:RolePolicy";
    expect(
      check(
        noSecretsWildcard,
        rp,
        policy({
          Effect: "Allow",
          Action: ["secretsmanager:GetSecretValue"],
          Resource: ["arn:aws:secretsmanager:us-east-1:1:secret:a"],
        }),
      ),
    ).toEqual([]);
    expect(
      check(noSecretsWildcard, rp, policy({ Effect: "Allow", Action: "s3:GetObject", Resource: "*" })),
    ).toEqual([]);
    expect(
      check(
        noSecretsWildcard,
        rp,
        policy({
          Effect: "Allow",
          Action: "secretsmanager:*",
          Resource: "arn:aws:secretsmanager:us-east-1:1:secret:a",
        }),
      ),
    ).toHaveLength(1);
    expect(
      check(noSecretsWildcard, rp, policy({ Effect: "Allow", Action: ["kms:Decrypt"], Resource: ["*"] })),
    ).toHaveLength(1);
    expect(check(noSecretsWildcard, rp, { policy: "not json" })).toEqual(["policy is not JSON"]);
  });

  it("noSecretEnvironment: the sidecar's own variables are references or numbers, but for its token", () => {
    const sidecar = (environment: { name: string; value: string }[]) =>
      td([{ name: "sidecar", environment }]);
    expect(
      check(
        noSecretEnvironment,
        TD,
        sidecar([
          { name: "MCP_SIDECAR_SECRETS_AGENT_TIMEOUT", value: "3s" },
          { name: "MCP_SIDECAR_AUTH_SECRET", value: "team/mcp-key" },
        ]),
      ),
    ).toEqual([]);
    expect(
      check(noSecretEnvironment, TD, sidecar([{ name: "MCP_SIDECAR_SECRETS_TOKEN", value: "s3cr3t-token" }])),
    ).toEqual([
      "container sidecar: MCP_SIDECAR_SECRETS_TOKEN looks like a secret in plain environment (use secrets with an ARN)",
    ]);
  });

  it("noSecretEnvironment and the preview agree on a server's environment: one rule, applied twice", () => {
    const samples: [string, string][] = [
      ["DB_PASSWORD", "hunter2"],
      ["GITHUB_TOKEN", "ghp_x"],
      ["DATABASE_URL", "postgres://app:pw@db/app"],
      ["TOKEN_URL", "https://idp/token"],
      ["SIGNING_SECRET", "arn:aws:secretsmanager:us-east-1:1:secret:s"],
      ["LOG_FORMAT", "json"],
      ["UPSTREAM_URL", "https://api.example.com"],
    ];
    const verdicts = samples.map(([name, value]) => {
      const preview = serviceProblems(
        serviceShape({
          allowedCidrs: ["10.0.0.0/8"],
          auth: { mode: "create" },
          serverPort: 3000,
          serverEnvironment: { [name]: value },
        }),
      );
      const pack = check(
        noSecretEnvironment,
        TD,
        td(taskPlan({ server: { image: "srv", port: 3000, user: "1000", environment: { [name]: value } } })),
      );
      expect(pack.length > 0, name).toBe(preview.length > 0);
      return [name, preview.length > 0];
    });
    expect(Object.fromEntries(verdicts)).toEqual({
      DB_PASSWORD: true,
      GITHUB_TOKEN: true,
      DATABASE_URL: true,
      TOKEN_URL: false,
      SIGNING_SECRET: false,
      LOG_FORMAT: false,
      UPSTREAM_URL: false,
    });
  });

  // On the dev stack as the program builds it: test/infra.test.ts, which runs that program already.
  it("all pass on the task definition plan", () => {
    const plan = taskPlan();
    for (const policy of [nonRootContainers, noSecretEnvironment, coherentDrain, boundedSidecarMemory])
      expect(check(policy, TD, { ...td(plan), memory: "512" })).toEqual([]);
  });
});

describe("infra/examples/existing-server.ts", () => {
  const EXAMPLE = "../../infra/examples/existing-server.ts";
  const base = {
    "aws:region": "eu-west-1",
    "mcp-sidecar:serverImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-mcp-server@sha256:abc",
    "mcp-sidecar:sidecarImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mcp-sidecar@sha256:def",
    "mcp-sidecar:agentImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/secrets-agent@sha256:012",
    "mcp-sidecar:vpcId": "vpc-mine",
    "mcp-sidecar:publicSubnetIds": JSON.stringify(["subnet-a", "subnet-b"]),
    "mcp-sidecar:privateSubnetIds": JSON.stringify(["subnet-c", "subnet-d"]),
  };
  const byName = (program: Program) =>
    Object.fromEntries(
      (JSON.parse(program.one(TD).inputs.containerDefinitions as string) as ContainerDefinition[]).map(
        (c) => [c.name, c],
      ),
    );
  const envOf = (c: ContainerDefinition | undefined) =>
    Object.fromEntries((c?.environment ?? []).map((e) => [e.name, e.value]));

  it("instantiates McpService for an existing server image in an existing VPC", async () => {
    const program = await runProgram(base, EXAMPLE);
    const containers = byName(program);
    expect(containers.server?.image).toBe(
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-mcp-server@sha256:abc",
    );
    expect(containers.sidecar?.stopTimeout).toBe(65);
    expect(program.ofType("docker-build:index:Image")).toHaveLength(0);
    // The stack's region, from the provider (the mocks answer getRegion with aws:region).
    expect(program.outputs.readApiKeyCommand).toMatch(
      /^aws secretsmanager get-secret-value --region eu-west-1 --secret-id arn:aws:secretsmanager:/,
    );
  });

  it("reads injectHeaders, serverEnvironment and sidecarOptions in the stack config's shapes", async () => {
    const header = "X-Api-Key=arn:aws:secretsmanager:eu-west-1:123456789012:secret:upstream-Zz0011#key";
    const program = await runProgram(
      {
        ...base,
        "mcp-sidecar:injectHeaders": JSON.stringify([header]),
        "mcp-sidecar:serverEnvironment": JSON.stringify(["LOG_FORMAT=json"]),
        "mcp-sidecar:sidecarOptions": JSON.stringify(["--ready-cache=5s"]),
        "mcp-sidecar:readyProbe": "tcp",
      },
      EXAMPLE,
    );
    const { server, sidecar } = byName(program);
    expect(envOf(sidecar)).toMatchObject({
      MCP_SIDECAR_INJECT_HEADER: header,
      MCP_SIDECAR_READY_CACHE: "5s",
      MCP_SIDECAR_READY_PROBE: "tcp",
    });
    expect(envOf(server)).toEqual({ LOG_FORMAT: "json" });
    const task = program.ofType("aws:iam/rolePolicy:RolePolicy").find((p) => p.name.endsWith("task-secrets"));
    expect(JSON.parse(task?.inputs.policy as string).Statement[0].Resource).toContain(
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:upstream-Zz0011",
    );
    // The stack's parser, with its problems: a secret by name only is refused, as in a stack.
    await expect(
      runProgram({ ...base, "mcp-sidecar:injectHeaders": JSON.stringify(["X-Key=plain-name"]) }, EXAMPLE),
    ).rejects.toThrow(/injectHeaders: "X-Key=plain-name": name the secret by ARN/);
    // And the component itself refuses a secret in the server's plain environment.
    await expect(
      runProgram(
        { ...base, "mcp-sidecar:serverEnvironment": JSON.stringify(["API_KEY=s3cr3t-key"]) },
        EXAMPLE,
      ),
    ).rejects.toThrow(/serverEnvironment: API_KEY looks like a secret in plain environment/);
  });
});

describe("releaseTag (infra/images.ts)", () => {
  it("tags from the commit; the same edits give the same tag, so a second preview does not rebuild", async () => {
    const { releaseTag } = await import("../infra/images.ts");
    expect(releaseTag("v1.2.3")).toBe("v1.2.3");
    const saved = process.env.GITHUB_SHA;
    try {
      process.env.GITHUB_SHA = "0123456789abcdef0123456789abcdef01234567";
      expect(releaseTag()).toBe("0123456789ab");
    } finally {
      if (saved === undefined) delete process.env.GITHUB_SHA;
      else process.env.GITHUB_SHA = saved;
    }
    if (process.env.GITHUB_SHA) return;
    const tag = releaseTag();
    expect(tag).toMatch(/^[0-9a-f]{12}(-dirty-[0-9a-f]{8})?$/);
    expect(releaseTag()).toBe(tag);
  });
});
