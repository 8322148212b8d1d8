// The pure plan (infra/plan.ts and infra/plan/), the policy pack's rules (infra/policy/rules.ts) on passing and
// failing inputs (infra.test.ts runs them on the real dev stack), and the second example under mocks.
import { describe, expect, it } from "vitest";
import { containerDefinitions } from "../infra/plan/containers.ts";
import { taskRolePolicy } from "../infra/plan/iam.ts";
import {
  ecrLifecyclePolicy,
  FARGATE_MAX_STOP_TIMEOUT_SECONDS,
  fargateSizeProblems,
  PlanError,
  planTiming,
} from "../infra/plan.ts";
import {
  arm64Tasks,
  coherentDrain,
  ecrImmutableScanned,
  nonRootContainers,
  noSecretEnvironment,
  noSecretsWildcard,
} from "../infra/policy/rules.ts";
import { check } from "./helpers/policy.ts";
import { runProgram } from "./helpers/pulumi-mocks.ts";

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

// ---- policies ----

const TD = "aws:ecs/taskDefinition:TaskDefinition";
const td = (containers: unknown[], arch = "ARM64") => ({
  runtimePlatform: { cpuArchitecture: arch },
  containerDefinitions: JSON.stringify(containers),
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

  // On the dev stack as the program builds it: test/infra.test.ts, which runs that program already.
  it("all pass on the task definition plan", () => {
    const plan = containerDefinitions({
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
    });
    for (const policy of [nonRootContainers, noSecretEnvironment, coherentDrain])
      expect(check(policy, TD, td(plan))).toEqual([]);
  });
});

describe("infra/examples/existing-server.ts", () => {
  it("instantiates McpService for an existing server image in an existing VPC", async () => {
    const program = await runProgram(
      {
        "aws:region": "eu-west-1",
        "mcp-sidecar:serverImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-mcp-server@sha256:abc",
        "mcp-sidecar:sidecarImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mcp-sidecar@sha256:def",
        "mcp-sidecar:agentImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/secrets-agent@sha256:012",
        "mcp-sidecar:vpcId": "vpc-mine",
        "mcp-sidecar:publicSubnetIds": JSON.stringify(["subnet-a", "subnet-b"]),
        "mcp-sidecar:privateSubnetIds": JSON.stringify(["subnet-c", "subnet-d"]),
      },
      "../../infra/examples/existing-server.ts",
    );
    const td = program.one(TD);
    const containers = JSON.parse(td.inputs.containerDefinitions as string) as {
      name: string;
      image: string;
      stopTimeout: number;
    }[];
    expect(containers.find((c) => c.name === "server")?.image).toBe(
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-mcp-server@sha256:abc",
    );
    expect(containers.find((c) => c.name === "sidecar")?.stopTimeout).toBe(65);
    expect(program.ofType("docker-build:index:Image")).toHaveLength(0);
    expect(program.outputs.readApiKeyCommand).toContain("aws secretsmanager get-secret-value");
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
