// The Pulumi program under mocks: the real entry (infra/index.ts), config from Pulumi.dev.yaml (and
// variants), and the properties ECS, ELB, IAM and ECR would receive. Every assertion is on awaited
// values (never inside an apply nobody awaits).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { ContainerDefinition } from "../infra/plan/containers.ts";
import { ALL_POLICIES, nonRootContainers } from "../infra/policy/rules.ts";
import { envName, OPTIONS, parseConfig } from "../proxy/config.ts";
import { check } from "./helpers/policy.ts";
import { MOCK_RANDOM, type Program, runProgram, stackConfig } from "./helpers/pulumi-mocks.ts";

const dev = (overrides: Record<string, unknown> = {}) =>
  stackConfig("Pulumi.dev.yaml", { "mcp-sidecar:imageTag": "test", ...overrides });

function containers(program: Program): Record<string, ContainerDefinition> {
  const td = program.one("aws:ecs/taskDefinition:TaskDefinition");
  const list = JSON.parse(td.inputs.containerDefinitions as string) as ContainerDefinition[];
  return Object.fromEntries(list.map((c) => [c.name, c]));
}

const env = (c: ContainerDefinition | undefined) =>
  Object.fromEntries((c?.environment ?? []).map((e) => [e.name, e.value]));

/** What a Fargate task's sidecar finds in its environment besides the task definition's. */
const FARGATE_ENV = {
  AWS_TOKEN: "token-from-the-task-secrets",
  ECS_CONTAINER_METADATA_URI_V4: "http://169.254.170.2/v4/cd189a933e5849daa93386466019ab50-2495160603",
};

describe("the dev stack (Pulumi.dev.yaml)", async () => {
  const program = await runProgram(dev());
  const byName = containers(program);
  const { sidecar, server } = byName;
  const agent = byName["secrets-agent"];

  it("passes every rule of the policy pack", () => {
    const violations: string[] = [];
    for (const resource of program.resources) {
      for (const policy of ALL_POLICIES) {
        for (const message of check(policy, resource.type, resource.inputs))
          violations.push(`${policy.name} ${resource.name}: ${message}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("runs three containers in an ARM64 awsvpc Fargate task of a valid size", () => {
    const td = program.one("aws:ecs/taskDefinition:TaskDefinition");
    expect(Object.keys(byName).sort()).toEqual(["secrets-agent", "server", "sidecar"]);
    expect(td.inputs).toMatchObject({
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      runtimePlatform: { cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" },
      cpu: "512",
      memory: "1024",
    });
    expect(td.inputs.executionRoleArn).toMatch(/^arn:aws:iam:.*execution/);
    expect(td.inputs.taskRoleArn).toMatch(/^arn:aws:iam:.*-task$/);
  });

  it("pins every image by digest from its own ECR repository", () => {
    for (const c of [sidecar, server, agent])
      expect(c?.image).toMatch(
        /^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\/mcp-sidecar-dev-\w+@sha256:[0-9a-f]{64}$/,
      );
    expect(sidecar?.image).toContain("mcp-sidecar-dev-sidecar@");
    expect(server?.image).toContain("mcp-sidecar-dev-server@");
    expect(agent?.image).toContain("mcp-sidecar-dev-agent@");
  });

  it("orders start-up (and so, reversed, shutdown): the sidecar depends on a healthy server and agent", () => {
    expect(sidecar?.dependsOn).toEqual([
      { containerName: "server", condition: "HEALTHY" },
      { containerName: "secrets-agent", condition: "HEALTHY" },
    ]);
    expect(server?.dependsOn).toBeUndefined();
    expect(agent?.dependsOn).toBeUndefined();
  });

  it("derives stop timeout, the sidecar's drain timeout and the deregistration delay from drainSeconds", () => {
    for (const c of [sidecar, server, agent]) expect(c?.stopTimeout).toBe(30);
    expect(env(sidecar).MCP_SIDECAR_DRAIN_TIMEOUT).toBe("25s");
    expect(program.one("aws:lb/targetGroup:TargetGroup").inputs.deregistrationDelay).toBe(25);
  });

  it("exposes only the sidecar: port 8080 to the target group, metrics on 9090, nothing on the server", () => {
    expect(sidecar?.portMappings).toEqual([
      { containerPort: 8080, protocol: "tcp" },
      { containerPort: 9090, protocol: "tcp" },
    ]);
    expect(server?.portMappings).toBeUndefined();
    expect(agent?.portMappings).toBeUndefined();
    const service = program.one("aws:ecs/service:Service");
    const targetGroupArn = `arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/${program.one("aws:lb/targetGroup:TargetGroup").name}/0123456789abcdef`;
    expect(service.inputs.loadBalancers).toEqual([
      { targetGroupArn, containerName: "sidecar", containerPort: 8080 },
    ]);
  });

  it("checks health in exec form with no shell: sidecar healthcheck, server healthcheck, agent-probe", () => {
    expect(sidecar?.healthCheck?.command).toEqual([
      "CMD",
      "/nodejs/bin/node",
      "--max-semi-space-size=4",
      "--heap-growing-percent=100",
      "/app/proxy/cli.ts",
      "healthcheck",
    ]);
    expect(server?.healthCheck?.command).toEqual([
      "CMD",
      "/nodejs/bin/node",
      "/app/server/main.ts",
      "healthcheck",
    ]);
    expect(agent?.healthCheck?.command).toEqual(["CMD", "/usr/local/bin/agent-probe", "2773"]);
    for (const c of [sidecar, server, agent]) {
      expect(c?.healthCheck?.interval).toBeGreaterThanOrEqual(5);
      expect(c?.healthCheck?.timeout).toBeLessThan(c?.healthCheck?.interval as number);
    }
  });

  it("gives the SSRF token to the agent and the sidecar through secrets (by ARN), never as plain env", () => {
    const tokenArn = program.one("aws:secretsmanager/secret:Secret", "agent-token");
    for (const c of [sidecar, agent])
      expect(c?.secrets).toEqual([{ name: "AWS_TOKEN", valueFrom: expect.stringContaining("agent-token") }]);
    expect(tokenArn).toBeDefined();
    const everything = JSON.stringify(byName);
    expect(everything).not.toContain(MOCK_RANDOM);
    for (const c of [sidecar, server, agent]) expect(Object.keys(env(c))).not.toContain("AWS_TOKEN");
  });

  it("configures the sidecar: upstream on loopback, agent on loopback, the API key secret by ARN", () => {
    expect(env(sidecar)).toMatchObject({
      MCP_SIDECAR_UPSTREAM: "http://127.0.0.1:3000",
      MCP_SIDECAR_PORT: "8080",
      MCP_SIDECAR_METRICS_PORT: "9090",
      MCP_SIDECAR_SECRETS_AGENT: "http://127.0.0.1:2773",
      MCP_SIDECAR_AUTH_SECRET: expect.stringMatching(
        /^arn:aws:secretsmanager:us-east-1:123456789012:secret:mcp-sidecar-dev-api-key-AbC123$/,
      ),
      // The readiness probe is named, not left to the sidecar's defaults: a ping at the MCP path.
      MCP_SIDECAR_READY_PROBE: "mcp",
      MCP_SIDECAR_READY_PROBE_PATH: "/mcp",
      MCP_SIDECAR_LOG_LEVEL: "info",
    });
    expect(env(server)).toEqual({ MCP_SERVER_PORT: "3000" });
  });

  it("gives the sidecar an environment its own config parser accepts, with the stack's timings", () => {
    const known = new Set(OPTIONS.map((spec) => envName(spec.flag)));
    // Besides the sidecar's own options, only Node's: the V8 heap limits (plan/memory.ts).
    expect(Object.keys(env(sidecar)).filter((name) => !known.has(name))).toEqual(["NODE_OPTIONS"]);
    const parsed = parseConfig([], { ...env(sidecar), ...FARGATE_ENV });
    if (parsed.kind !== "config") throw new Error(`sidecar config refused: ${JSON.stringify(parsed)}`);
    const alb = program.one("aws:lb/loadBalancer:LoadBalancer").inputs.idleTimeout as number;
    expect(parsed.config.drainTimeoutMs).toBe(25_000);
    // maxCount 2 with a server that keeps sessions: sessions are routed between the tasks.
    expect(parsed.config).toMatchObject({
      sessionRouting: true,
      sessionContinuity: "replay",
      advertiseUrl: "auto",
      peerCidrs: [expect.objectContaining({ label: "10.0.0.0/16" })],
      sessionSecret: expect.objectContaining({ secretId: expect.stringContaining("session-key") }),
    });
    // The ALB closes an idle connection first; the sidecar closing first would race a request (502).
    expect(parsed.config.keepAliveTimeoutMs).toBeGreaterThan(alb * 1000);
    expect(alb).toBeGreaterThan(parsed.config.sseKeepaliveMs / 1000);
  });

  it("runs every container as 65532 with a read-only root filesystem, logging to its own group and prefix", () => {
    for (const c of [sidecar, server, agent]) {
      expect(c?.user).toBe("65532:65532");
      expect(c?.readonlyRootFilesystem).toBe(true);
      expect(c?.logConfiguration).toEqual({
        logDriver: "awslogs",
        options: {
          "awslogs-group": `/mcp-sidecar/mcp-sidecar-dev/${c?.name}`,
          "awslogs-region": "us-east-1",
          "awslogs-stream-prefix": c?.name,
        },
      });
    }
    for (const group of program.ofType("aws:cloudwatch/logGroup:LogGroup"))
      expect(group.inputs.retentionInDays).toBe(7);
    expect(program.ofType("aws:cloudwatch/logGroup:LogGroup")).toHaveLength(3);
  });

  it("gives the sidecar its own memory: a reservation, a hard limit and V8 heap limits under it", () => {
    expect(sidecar).toMatchObject({ memory: 256, memoryReservation: 160 });
    expect(env(sidecar).NODE_OPTIONS).toBe("--max-old-space-size=132 --max-semi-space-size=4");
    // The server and the agent share what is left of the task's memory: 768 of 1024 MiB.
    for (const c of [server, agent])
      expect([c?.memory, c?.memoryReservation]).toEqual([undefined, undefined]);
    const td = program.one("aws:ecs/taskDefinition:TaskDefinition");
    expect(Number(td.inputs.memory) - (sidecar?.memory as number)).toBe(768);
  });

  it("deploys safely: circuit breaker with rollback, 100/200, grace period, private network config", () => {
    const service = program.one("aws:ecs/service:Service");
    expect(service.inputs).toMatchObject({
      launchType: "FARGATE",
      deploymentCircuitBreaker: { enable: true, rollback: true },
      deploymentMinimumHealthyPercent: 100,
      deploymentMaximumPercent: 200,
      healthCheckGracePeriodSeconds: 60,
      networkConfiguration: {
        assignPublicIp: true,
        subnets: ["subnet-public-a", "subnet-public-b"],
        securityGroups: [expect.stringContaining("task")],
      },
    });
    const target = program.one("aws:appautoscaling/target:Target");
    expect(target.inputs).toMatchObject({
      minCapacity: 1,
      maxCapacity: 2,
      scalableDimension: "ecs:service:DesiredCount",
    });
    const policy = program.one("aws:appautoscaling/policy:Policy");
    expect(policy.inputs).toMatchObject({ policyType: "TargetTrackingScaling" });
    // `pulumi up` fails when the rollout does, instead of reporting a rolled-back deploy as done.
    expect(service.inputs.waitForSteadyState).toBe(true);
  });

  it("creates the service only once its listener, IAM grants and secret values exist", () => {
    // ECS refuses a service whose target group no listener uses; tasks started before their roles
    // may read the secrets fail with ResourceInitializationError.
    expect(program.one("aws:ecs/service:Service").dependsOn).toEqual(
      expect.arrayContaining([
        "mcp-sidecar-dev-http",
        "mcp-sidecar-dev-execution",
        "mcp-sidecar-dev-execution-token",
        "mcp-sidecar-dev-task-secrets",
        "mcp-sidecar-dev-agent-token",
        "mcp-sidecar-dev-api-key",
        "mcp-sidecar-dev-session-key",
      ]),
    );
    const listener = program.one("aws:lb/listener:Listener");
    const versions = program.ofType("aws:secretsmanager/secretVersion:SecretVersion");
    expect(listener.name).toBe("mcp-sidecar-dev-http");
    expect(versions.map((v) => v.name).sort()).toEqual([
      "mcp-sidecar-dev-agent-token",
      "mcp-sidecar-dev-api-key",
      "mcp-sidecar-dev-session-key",
    ]);
  });

  it("checks /ready from the target group, with an idle timeout above the SSE keepalive", () => {
    const tg = program.one("aws:lb/targetGroup:TargetGroup");
    expect(tg.inputs).toMatchObject({
      targetType: "ip",
      protocol: "HTTP",
      port: 8080,
      healthCheck: { path: "/ready", matcher: "200" },
    });
    const alb = program.one("aws:lb/loadBalancer:LoadBalancer");
    expect(alb.inputs.idleTimeout).toBeGreaterThan(15);
    expect(alb.inputs.subnets).toEqual(["subnet-public-a", "subnet-public-b"]);
    const listeners = program.ofType("aws:lb/listener:Listener");
    expect(
      listeners.map((l) => [
        l.inputs.port,
        l.inputs.protocol,
        (l.inputs.defaultActions as { type: string }[])[0]?.type,
      ]),
    ).toEqual([[80, "HTTP", "forward"]]);
  });

  it("lets the ALB in from the allowed CIDRs only, and the tasks from the ALB and each other only, on the sidecar port", () => {
    const albSg = program.one("aws:ec2/securityGroup:SecurityGroup", "alb");
    expect(albSg.inputs.ingress).toEqual([
      expect.objectContaining({ protocol: "tcp", fromPort: 80, toPort: 80, cidrBlocks: ["0.0.0.0/0"] }),
    ]);
    const taskSg = program.one("aws:ec2/securityGroup:SecurityGroup", "task");
    expect(taskSg.inputs.ingress).toEqual([
      expect.objectContaining({
        protocol: "tcp",
        fromPort: 8080,
        toPort: 8080,
        securityGroups: [expect.stringContaining("alb")],
      }),
      // Session routing: a task forwards a session's requests to the task that owns it.
      expect.objectContaining({ protocol: "tcp", fromPort: 8080, toPort: 8080, self: true }),
    ]);
    expect((taskSg.inputs.ingress as { cidrBlocks?: unknown }[])[1]?.cidrBlocks).toBeUndefined();
    expect((taskSg.inputs.ingress as { cidrBlocks?: unknown }[])[0]?.cidrBlocks).toBeUndefined();
  });

  it("grants the task role exactly the served secrets, and the execution role exactly the token", () => {
    const policies = program.ofType("aws:iam/rolePolicy:RolePolicy");
    const task = JSON.parse(policies.find((p) => p.name.endsWith("task-secrets"))?.inputs.policy as string);
    expect(task).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "ReadServedSecrets",
          Effect: "Allow",
          Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
          Resource: [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:mcp-sidecar-dev-api-key-AbC123",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:mcp-sidecar-dev-session-key-AbC123",
          ],
        },
      ],
    });
    const execution = JSON.parse(
      policies.find((p) => p.name.endsWith("execution-token"))?.inputs.policy as string,
    );
    expect(execution.Statement).toEqual([
      {
        Sid: "InjectAgentToken",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [expect.stringContaining("agent-token")],
      },
    ]);
    for (const p of policies) expect(p.inputs.policy as string).not.toContain("*");
    expect(program.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs.policyArn).toBe(
      "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    );
  });

  it("keeps ECR immutable (the cache tag excepted) and scanned, and its lifecycle never touches untagged images", () => {
    const repos = program.ofType("aws:ecr/repository:Repository");
    expect(repos.map((r) => r.inputs.name).sort()).toEqual([
      "mcp-sidecar-dev-agent",
      "mcp-sidecar-dev-server",
      "mcp-sidecar-dev-sidecar",
    ]);
    for (const repo of repos) {
      expect(repo.inputs).toMatchObject({
        imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters: [{ filter: "buildcache*", filterType: "WILDCARD" }],
        imageScanningConfiguration: { scanOnPush: true },
      });
    }
    expect(program.ofType("aws:ecr/lifecyclePolicy:LifecyclePolicy")).toHaveLength(3);
    for (const lifecycle of program.ofType("aws:ecr/lifecyclePolicy:LifecyclePolicy")) {
      const rules = (
        JSON.parse(lifecycle.inputs.policy as string) as {
          rules: { selection: { tagStatus: string; tagPrefixList: string[]; countNumber: number } }[];
        }
      ).rules;
      expect(rules.every((rule) => rule.selection.tagStatus === "tagged")).toBe(true);
      expect(rules[0]?.selection).toMatchObject({ tagPrefixList: ["git-"], countNumber: 20 });
    }
  });

  it("builds each image for linux/amd64 and linux/arm64, pushes it tagged from the commit, caches in ECR", () => {
    const images = program.ofType("docker-build:index:Image");
    expect(images.map((i) => i.name).sort()).toEqual(["agent", "server", "sidecar"]);
    for (const image of images) {
      expect(image.inputs).toMatchObject({
        platforms: ["linux/amd64", "linux/arm64"],
        push: true,
        tags: [expect.stringMatching(image.name === "agent" ? /:git-test-ttl30$/ : /:git-test$/)],
        cacheTo: [
          {
            registry: {
              ref: expect.stringMatching(/:buildcache$/),
              imageManifest: true,
              ociMediaTypes: true,
              mode: "max",
            },
          },
        ],
      });
    }
    // The TTL is built into the agent image, so it is in its tag: ECR's tags are immutable.
    expect(images.find((i) => i.name === "agent")?.inputs.buildArgs).toEqual({ AGENT_TTL_SECONDS: "30" });
    const sidecarImage = program.one("docker-build:index:Image", "sidecar");
    expect((sidecarImage.inputs.dockerfile as { location: string }).location).toMatch(/proxy\/Dockerfile$/);
  });

  it("outputs the URL, digests, names and secret ARNs, a command to read the API key, and never a secret value", () => {
    const outputs = program.outputs;
    expect(outputs.url).toBe("http://mcp-sidecar-dev.us-east-1.elb.amazonaws.com/mcp");
    expect(outputs.readApiKeyCommand).toMatch(
      /^aws secretsmanager get-secret-value --region us-east-1 --secret-id arn:aws:secretsmanager:us-east-1:123456789012:secret:mcp-sidecar-dev-api-key-AbC123 --query SecretString --output text$/,
    );
    expect(outputs.imageDigests).toEqual({
      sidecar: expect.stringMatching(/^sha256:/),
      server: expect.stringMatching(/^sha256:/),
      agent: expect.stringMatching(/^sha256:/),
    });
    expect(outputs.clusterName).toBeTruthy();
    expect(outputs.serviceName).toBeTruthy();
    expect(JSON.stringify(outputs)).not.toContain(MOCK_RANDOM);
  });

  it("stores generated values only in Secrets Manager", () => {
    const versions = program.ofType("aws:secretsmanager/secretVersion:SecretVersion");
    expect(versions).toHaveLength(3);
    const withValue = program.resources.filter((r) => JSON.stringify(r.inputs).includes(MOCK_RANDOM));
    expect(new Set(withValue.map((r) => r.type))).toEqual(
      new Set(["aws:secretsmanager/secretVersion:SecretVersion"]),
    );
  });
});

describe("variants", () => {
  it("drops the sidecar beside an existing server image: no server build, START dependency without a health check", async () => {
    const program = await runProgram(
      dev({
        "mcp-sidecar:serverImage": "ghcr.io/acme/mcp-server:1.4.2",
        "mcp-sidecar:serverPort": 9000,
        "mcp-sidecar:serverUser": "1000:1000",
      }),
    );
    const { sidecar, server } = containers(program);
    expect(server?.image).toBe("ghcr.io/acme/mcp-server:1.4.2");
    expect(
      program
        .ofType("docker-build:index:Image")
        .map((i) => i.name)
        .sort(),
    ).toEqual(["agent", "sidecar"]);
    expect(program.ofType("aws:ecr/repository:Repository")).toHaveLength(2);
    expect(sidecar?.dependsOn?.[0]).toEqual({ containerName: "server", condition: "START" });
    expect(env(sidecar).MCP_SIDECAR_UPSTREAM).toBe("http://127.0.0.1:9000");
    expect(server?.readonlyRootFilesystem).toBe(false);
    expect(server?.user).toBe("1000:1000");
    const taskDefinition = "aws:ecs/taskDefinition:TaskDefinition";
    expect(check(nonRootContainers, taskDefinition, program.one(taskDefinition).inputs)).toEqual([]);
    // Without serverUser the image's default user runs it, and the policy pack refuses the stack.
    const noUser = await runProgram(dev({ "mcp-sidecar:serverImage": "ghcr.io/acme/mcp-server:1.4.2" }));
    expect(check(nonRootContainers, taskDefinition, noUser.one(taskDefinition).inputs)).toEqual([
      "container server runs as the image's default user, not a non-root user",
    ]);
  });

  it("runs an existing agent image without a probe: no agent health check, the sidecar waits for its start", async () => {
    const image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/aws-secretsmanager-agent@sha256:abc";
    const program = await runProgram(
      dev({ "mcp-sidecar:agentImage": image, "mcp-sidecar:agentTtlSeconds": null }),
    );
    const byName = containers(program);
    expect(byName["secrets-agent"]?.image).toBe(image);
    expect(byName["secrets-agent"]?.healthCheck).toBeUndefined();
    expect(byName.sidecar?.dependsOn).toEqual([
      { containerName: "server", condition: "HEALTHY" },
      { containerName: "secrets-agent", condition: "START" },
    ]);
    expect(
      program
        .ofType("docker-build:index:Image")
        .map((i) => i.name)
        .sort(),
    ).toEqual(["server", "sidecar"]);
    const probed = await runProgram(
      dev({
        "mcp-sidecar:agentImage": image,
        "mcp-sidecar:agentTtlSeconds": null,
        "mcp-sidecar:agentHealthCheck": ["/probe"],
      }),
    );
    expect(containers(probed)["secrets-agent"]?.healthCheck?.command).toEqual(["CMD", "/probe"]);
    expect(containers(probed).sidecar?.dependsOn?.[1]).toEqual({
      containerName: "secrets-agent",
      condition: "HEALTHY",
    });
    // The TTL is built into the image this stack builds; it cannot reach an image built elsewhere.
    await expect(runProgram(dev({ "mcp-sidecar:agentImage": image }))).rejects.toThrow(
      /agentTtlSeconds is built into the agent image this stack builds/,
    );
  });

  it("x86, HTTPS with a redirect, an existing VPC with private tasks, an existing API key, injected headers and a KMS key", async () => {
    const program = await runProgram(
      dev({
        "mcp-sidecar:architecture": "X86_64",
        "mcp-sidecar:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
        "mcp-sidecar:vpcId": "vpc-existing",
        "mcp-sidecar:publicSubnetIds": ["subnet-pub-1", "subnet-pub-2"],
        "mcp-sidecar:privateSubnetIds": ["subnet-priv-1", "subnet-priv-2"],
        "mcp-sidecar:assignPublicIp": false,
        "mcp-sidecar:allowedCidrs": ["10.0.0.0/8"],
        "mcp-sidecar:auth": "existing",
        "mcp-sidecar:apiKeySecretArn":
          "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/mcp-key-AbCdEf",
        "mcp-sidecar:injectHeaders": [
          "X-Api-Key=arn:aws:secretsmanager:us-east-1:123456789012:secret:upstream-Zz0011#key",
        ],
        "mcp-sidecar:kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234",
        // One task: no session routing, so the task role reads exactly the API key and the header.
        "mcp-sidecar:maxCount": 1,
      }),
    );
    expect(program.one("aws:ecs/taskDefinition:TaskDefinition").inputs.runtimePlatform).toEqual({
      cpuArchitecture: "X86_64",
      operatingSystemFamily: "LINUX",
    });
    expect(program.ofType("awsx:ec2:Vpc")).toHaveLength(0);
    const service = program.one("aws:ecs/service:Service");
    expect(service.inputs.networkConfiguration).toMatchObject({
      subnets: ["subnet-priv-1", "subnet-priv-2"],
      assignPublicIp: false,
    });
    const listeners = program.ofType("aws:lb/listener:Listener").map((l) => ({
      port: l.inputs.port,
      protocol: l.inputs.protocol,
      action: (l.inputs.defaultActions as { type: string; redirect?: unknown }[])[0],
    }));
    expect(listeners).toEqual(
      expect.arrayContaining([
        { port: 443, protocol: "HTTPS", action: expect.objectContaining({ type: "forward" }) },
        {
          port: 80,
          protocol: "HTTP",
          action: { type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } },
        },
      ]),
    );
    const albSg = program.one("aws:ec2/securityGroup:SecurityGroup", "alb");
    expect(
      (albSg.inputs.ingress as { fromPort: number; cidrBlocks: string[] }[]).map((r) => [
        r.fromPort,
        r.cidrBlocks,
      ]),
    ).toEqual([
      [80, ["10.0.0.0/8"]],
      [443, ["10.0.0.0/8"]],
    ]);
    expect(program.ofType("aws:secretsmanager/secret:Secret").map((s) => s.name)).toEqual([
      "mcp-sidecar-dev-agent-token",
    ]);
    const task = JSON.parse(
      program.ofType("aws:iam/rolePolicy:RolePolicy").find((p) => p.name.endsWith("task-secrets"))?.inputs
        .policy as string,
    );
    expect(task.Statement).toEqual([
      {
        Sid: "ReadServedSecrets",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        Resource: [
          "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/mcp-key-AbCdEf",
          "arn:aws:secretsmanager:us-east-1:123456789012:secret:upstream-Zz0011",
        ],
      },
      {
        Sid: "DecryptServedSecrets",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: ["arn:aws:kms:us-east-1:123456789012:key/1234"],
      },
    ]);
    const { sidecar } = containers(program);
    expect(env(sidecar).MCP_SIDECAR_INJECT_HEADER).toBe(
      "X-Api-Key=arn:aws:secretsmanager:us-east-1:123456789012:secret:upstream-Zz0011#key",
    );
    expect(program.outputs.url).toMatch(/^https:\/\//);
  });

  it("routes sessions whenever more than one task can run a session-ful server: the key, its grant, task-to-task, the flags; not for one task or a stateless server", async () => {
    const routed = await runProgram(dev({ "mcp-sidecar:maxCount": 3 }));
    const { sidecar } = containers(routed);
    const key = routed.one("aws:secretsmanager/secret:Secret", "session-key");
    expect(key.inputs.recoveryWindowInDays).toBe(0);
    expect(routed.one("random:index/randomPassword:RandomPassword", "session-key").inputs).toMatchObject({
      length: 64,
      special: false,
    });
    expect(env(sidecar)).toMatchObject({
      MCP_SIDECAR_SESSION_ROUTING: "on",
      MCP_SIDECAR_SESSION_SECRET: expect.stringContaining("session-key"),
      MCP_SIDECAR_ADVERTISE_URL: "auto",
      MCP_SIDECAR_PEER_CIDRS: "10.0.0.0/16",
    });
    expect(sidecar?.dockerLabels).toEqual({
      "mcp-sidecar.max-tasks": "3",
      "mcp-sidecar.server-sessions": "kept",
    });
    const taskPolicy = routed
      .ofType("aws:iam/rolePolicy:RolePolicy")
      .find((p) => p.name.endsWith("task-secrets"));
    expect(taskPolicy?.inputs.policy).toContain("session-key");
    expect(routed.one("aws:ec2/securityGroup:SecurityGroup", "task").inputs.ingress).toContainEqual(
      expect.objectContaining({ fromPort: 8080, self: true }),
    );
    expect(routed.outputs.sessionKeySecretArn).toContain("session-key");

    for (const config of [
      { "mcp-sidecar:maxCount": 1 },
      {
        "mcp-sidecar:serverStateless": true,
        "mcp-sidecar:serverImage": "ghcr.io/example/stateless:1",
        "mcp-sidecar:serverUser": "1000:1000",
      },
    ]) {
      const single = await runProgram(dev(config));
      expect(env(containers(single).sidecar).MCP_SIDECAR_SESSION_ROUTING).toBeUndefined();
      expect(single.ofType("aws:secretsmanager/secret:Secret").map((s) => s.name)).not.toContainEqual(
        expect.stringContaining("session-key"),
      );
      expect(single.one("aws:ec2/securityGroup:SecurityGroup", "task").inputs.ingress).toHaveLength(1);
    }
    expect(await problemsOf(dev({ "mcp-sidecar:sessionRouting": false }))).toEqual([
      "sessionRouting is off while up to maxCount 2 tasks run a server that keeps sessions: requests the load balancer sends to another task would get 404 (turn it on, or declare server.stateless)",
    ]);
  });

  it("with auth disabled on a private network: no API key, no auth flag, no task secrets policy", async () => {
    const program = await runProgram(
      dev({
        "mcp-sidecar:auth": "disabled",
        "mcp-sidecar:allowedCidrs": ["10.0.0.0/16"],
        "mcp-sidecar:maxCount": 1,
      }),
    );
    expect(env(containers(program).sidecar).MCP_SIDECAR_AUTH_SECRET).toBeUndefined();
    expect(program.ofType("aws:iam/rolePolicy:RolePolicy").map((p) => p.name)).toEqual([
      "mcp-sidecar-dev-execution-token",
    ]);
    expect(program.outputs.readApiKeyCommand).toBeUndefined();
  });

  it.each([
    [1, 6],
    [10, 15],
    [60, 65],
    [115, 120],
  ])(
    "drainSeconds %d -> stopTimeout %d, drain timeout and deregistration delay equal to it",
    async (drain, stop) => {
      const program = await runProgram(dev({ "mcp-sidecar:drainSeconds": drain }));
      const all = Object.values(containers(program));
      for (const c of all) expect(c.stopTimeout).toBe(stop);
      expect(env(containers(program).sidecar).MCP_SIDECAR_DRAIN_TIMEOUT).toBe(`${drain}s`);
      expect(program.one("aws:lb/targetGroup:TargetGroup").inputs.deregistrationDelay).toBe(drain);
    },
  );

  it("refuses settings that cannot work, naming each, all in one report", async () => {
    const all = runProgram(
      dev({
        "mcp-sidecar:drainSeconds": 116,
        "mcp-sidecar:cpu": 512,
        "mcp-sidecar:memory": 512,
        "mcp-sidecar:auth": "maybe",
        "mcp-sidecar:minCount": 3,
        "mcp-sidecar:maxCount": 2,
        "mcp-sidecar:serverUser": "root user",
      }),
    );
    await expect(all).rejects.toThrow(/auth: "maybe" is not create, existing or disabled/);
    const problems = await all.then(
      () => [],
      (error: { problems?: string[] }) => error.problems ?? [],
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining("use at most 115"),
        expect.stringContaining("memory 512 MiB does not pair with cpu 512"),
        "maxCount 2 is below minCount 3",
        'serverUser: "root user" is not user, uid, user:group or uid:gid',
      ]),
    );
    expect(new Set(problems).size, "no problem is reported twice").toBe(problems.length);
    const second = await runProgram(
      dev({
        "mcp-sidecar:auth": "existing",
        "mcp-sidecar:serverPort": 8080,
        "mcp-sidecar:allowedCidrs": ["10.0.0.0/8", "office"],
      }),
    ).then(
      () => [],
      (error: { problems?: string[] }) => error.problems ?? [],
    );
    expect(second).toEqual([
      'auth is "existing": apiKeySecretArn must name the secret',
      'allowedCidrs: "office" is not an IPv4 CIDR',
      "server.port 8080 collides with the sidecar's ports (8080, 9090)",
    ]);
    await expect(runProgram(dev({ "mcp-sidecar:drainSeconds": 116 }))).rejects.toThrow(
      /above Fargate's maximum of 120 s \(use at most 115\)/,
    );
    await expect(runProgram(dev({ "mcp-sidecar:memory": 512 }))).rejects.toThrow(
      /memory 512 MiB does not pair with cpu 512/,
    );
    await expect(runProgram(dev({ "mcp-sidecar:injectHeaders": ["X-Key=plain-name"] }))).rejects.toThrow(
      /name the secret by ARN/,
    );
    await expect(runProgram(dev({ "mcp-sidecar:auth": "disabled" }))).rejects.toThrow(
      /refusing an open endpoint/,
    );
    // Private tasks do not make the internet-facing load balancer private.
    await expect(
      runProgram(dev({ "mcp-sidecar:auth": "disabled", "mcp-sidecar:assignPublicIp": false })),
    ).rejects.toThrow(/refusing an open endpoint/);
  });
});

const OWN_SERVER = {
  "mcp-sidecar:serverImage": "ghcr.io/acme/mcp-server:1.4.2",
  "mcp-sidecar:serverUser": "1000:1000",
};

/** The problems a preview reports for a config (none: it was accepted). */
const problemsOf = (config: Record<string, string>) =>
  runProgram(config).then(
    () => [],
    (error: { problems?: string[] }) => error.problems ?? [String(error)],
  );

describe("your own server: MCP path, readiness probe, environment, sidecar options", () => {
  it("serves MCP at mcpPath: the url ends with it and the mcp probe pings it", async () => {
    const program = await runProgram(dev({ ...OWN_SERVER, "mcp-sidecar:mcpPath": "/v1/mcp" }));
    expect(program.outputs.url).toBe("http://mcp-sidecar-dev.us-east-1.elb.amazonaws.com/v1/mcp");
    expect(env(containers(program).sidecar)).toMatchObject({
      MCP_SIDECAR_READY_PROBE: "mcp",
      MCP_SIDECAR_READY_PROBE_PATH: "/v1/mcp",
    });
  });

  it("probes readiness over http at readyProbePath, or by a TCP connect with no path", async () => {
    const http = await runProgram(
      dev({
        ...OWN_SERVER,
        "mcp-sidecar:mcpPath": "/sse",
        "mcp-sidecar:readyProbe": "http",
        "mcp-sidecar:readyProbePath": "/healthz",
      }),
    );
    expect(env(containers(http).sidecar)).toMatchObject({
      MCP_SIDECAR_READY_PROBE: "http",
      MCP_SIDECAR_READY_PROBE_PATH: "/healthz",
    });
    expect(http.outputs.url).toMatch(/\/sse$/);
    const tcp = await runProgram(dev({ ...OWN_SERVER, "mcp-sidecar:readyProbe": "tcp" }));
    expect(env(containers(tcp).sidecar).MCP_SIDECAR_READY_PROBE).toBe("tcp");
    expect(env(containers(tcp).sidecar)).not.toHaveProperty("MCP_SIDECAR_READY_PROBE_PATH");
  });

  it("gives the server its environment, beside the reference server's port", async () => {
    const own = await runProgram(
      dev({
        ...OWN_SERVER,
        "mcp-sidecar:serverEnvironment": ["LOG_FORMAT=json", "UPSTREAM_URL=https://api"],
      }),
    );
    expect(env(containers(own).server)).toEqual({ LOG_FORMAT: "json", UPSTREAM_URL: "https://api" });
    const reference = await runProgram(dev({ "mcp-sidecar:serverEnvironment": ["MCP_SERVER_STATELESS=1"] }));
    expect(env(containers(reference).server)).toEqual({ MCP_SERVER_STATELESS: "1", MCP_SERVER_PORT: "3000" });
  });

  it("passes sidecarOptions and logLevel as MCP_SIDECAR_* variables, and the pack still passes", async () => {
    const program = await runProgram(
      dev({
        "mcp-sidecar:logLevel": "debug",
        "mcp-sidecar:sidecarOptions": [
          "--ready-cache=5s",
          "--upstream-connections=64",
          "--secrets-agent-timeout=3s",
          "--max-body-size=8MiB",
        ],
      }),
    );
    expect(env(containers(program).sidecar)).toMatchObject({
      MCP_SIDECAR_LOG_LEVEL: "debug",
      MCP_SIDECAR_READY_CACHE: "5s",
      MCP_SIDECAR_UPSTREAM_CONNECTIONS: "64",
      MCP_SIDECAR_SECRETS_AGENT_TIMEOUT: "3s",
      MCP_SIDECAR_MAX_BODY_SIZE: "8MiB",
    });
    // MCP_SIDECAR_SECRETS_AGENT_TIMEOUT has SECRET in its name and is a duration, not a secret.
    const td = program.one("aws:ecs/taskDefinition:TaskDefinition");
    for (const policy of ALL_POLICIES) expect(check(policy, td.type, td.inputs), policy.name).toEqual([]);
  });

  // The sidecar exits 2 on a configuration it refuses, and ECS would restart it forever: every
  // variant's environment goes through the sidecar's own parser, as the container would read it.
  it.each([
    ["the dev stack", {}, { readyProbe: "mcp", readyProbePath: "/mcp" }],
    [
      "an own server probed over http",
      { ...OWN_SERVER, "mcp-sidecar:readyProbe": "http", "mcp-sidecar:readyProbePath": "/healthz" },
      { readyProbe: "http", readyProbePath: "/healthz" },
    ],
    [
      "an own server probed over tcp",
      { ...OWN_SERVER, "mcp-sidecar:serverPort": 9000, "mcp-sidecar:readyProbe": "tcp" },
      { readyProbe: "tcp", upstream: new URL("http://127.0.0.1:9000") },
    ],
    [
      "sidecar options and a log level",
      {
        "mcp-sidecar:logLevel": "warn",
        "mcp-sidecar:drainSeconds": 60,
        "mcp-sidecar:sidecarOptions": ["--drain-delay=5s", "--ready-cache=5s", "--max-staleness=10m"],
      },
      {
        logLevel: "warn",
        drainDelayMs: 5000,
        drainTimeoutMs: 60_000,
        readyCacheMs: 5000,
        maxStalenessMs: 600_000,
      },
    ],
    [
      "injected headers and no API key",
      {
        "mcp-sidecar:auth": "disabled",
        "mcp-sidecar:allowedCidrs": ["10.0.0.0/8"],
        "mcp-sidecar:injectHeaders": [
          "X-Key=arn:aws:secretsmanager:us-east-1:123456789012:secret:up-Zz0011#k",
        ],
      },
      { authSecret: undefined },
    ],
  ])("gives the sidecar an environment its own config parser accepts: %s", async (_, config, expected) => {
    const { sidecar } = containers(await runProgram(dev(config)));
    const known = new Set(OPTIONS.map((spec) => envName(spec.flag)));
    // A misspelt MCP_SIDECAR_ variable would be ignored by the sidecar without a word.
    expect(Object.keys(env(sidecar)).filter((name) => !known.has(name))).toEqual(["NODE_OPTIONS"]);
    const parsed = parseConfig([], { ...env(sidecar), ...FARGATE_ENV });
    if (parsed.kind !== "config") throw new Error(`sidecar config refused: ${JSON.stringify(parsed)}`);
    expect(parsed.config).toMatchObject(expected);
  });

  it("refuses what the sidecar or the policy pack would, naming each setting, never echoing a value", async () => {
    const problems = await problemsOf(
      dev({
        ...OWN_SERVER,
        "mcp-sidecar:mcpPath": "mcp",
        "mcp-sidecar:readyProbe": "grpc",
        "mcp-sidecar:logLevel": "verbose",
        "mcp-sidecar:serverEnvironment": [
          "DB_PASSWORD=s3cr3t-db",
          "DATABASE_URL=postgres://app:s3cr3t-pw@db:5432/app",
          "1BAD=x",
          "s3cr3t-without-a-name",
          "LOG_FORMAT=json",
          "LOG_FORMAT=text",
        ],
        "mcp-sidecar:sidecarOptions": [
          "--drain-timeout=60s",
          "--secrets-token=s3cr3t-token",
          "--secret-file=/run/key=arn:aws:secretsmanager:us-east-1:1:secret:k",
          "--no-such-option=1",
          "--ready-cache=soon",
          "--ready-cache 5s",
        ],
      }),
    );
    expect(problems).toEqual([
      "serverEnvironment[3] is not NAME=value",
      "serverEnvironment: LOG_FORMAT is given more than once",
      "sidecarOptions[5] is not --option=value",
      "serverEnvironment: DB_PASSWORD looks like a secret in plain environment; give the server secrets through injectHeaders or the Secrets Manager Agent",
      "serverEnvironment: DATABASE_URL is a URL carrying credentials in plain environment; give the server secrets through injectHeaders or the Secrets Manager Agent",
      'serverEnvironment: "1BAD" is not a variable name',
      'mcpPath: "mcp" is not a path (it must start with / and hold no query, fragment or space)',
      'readyProbe: "grpc" is not one of mcp, http, tcp',
      'logLevel: "verbose" is not one of trace, debug, info, warn, error, fatal, silent',
      "sidecarOptions: --drain-timeout is set by drainSeconds",
      "sidecarOptions: --secrets-token is set by the component: the agent's SSRF token comes from the task's secrets",
      "sidecarOptions: --secret-file is not available in this task: no volume is shared with the server, and the task role reads only the served secrets",
      "sidecarOptions: --no-such-option is not an option of the sidecar (mcp-sidecar --help lists them)",
      'sidecarOptions: --ready-cache: "soon" is not a duration (use e.g. 500ms, 15s, 2m; a bare number is seconds)',
    ]);
    expect(problems.join("\n")).not.toContain("s3cr3t");
  });

  it("refuses a probe path with the tcp probe, options the sidecar refuses together, and the reference server's fixed path and port", async () => {
    expect(
      await problemsOf(
        dev({ ...OWN_SERVER, "mcp-sidecar:readyProbe": "tcp", "mcp-sidecar:readyProbePath": "/x" }),
      ),
    ).toEqual(["readyProbePath is set but readyProbe is tcp: a TCP connect requests no path"]);
    // Each option is valid alone; the sidecar's own cross-checks refuse the pair.
    expect(await problemsOf(dev({ "mcp-sidecar:sidecarOptions": ["--drain-delay=30s"] }))).toEqual([
      "sidecarOptions: the sidecar refuses --drain-delay (30000 ms) must be shorter than --drain-timeout (25000 ms)",
    ]);
    expect(
      await problemsOf(
        dev({
          "mcp-sidecar:mcpPath": "/v1/mcp",
          "mcp-sidecar:serverEnvironment": ["MCP_SERVER_PORT=4000"],
        }),
      ),
    ).toEqual([
      "mcpPath is for serverImage: the reference server serves MCP at /mcp",
      "serverEnvironment: MCP_SERVER_PORT is set by serverPort for the reference server",
    ]);
  });
});

describe("the sidecar's memory", () => {
  it("sizes V8's old space from sidecarMemory, and keeps the reservation", async () => {
    const { sidecar } = containers(await runProgram(dev({ "mcp-sidecar:sidecarMemory": 512 })));
    expect(sidecar).toMatchObject({ memory: 512, memoryReservation: 160 });
    // 512 - 12 young generation - 80 outside the heap - 64 margin (an eighth).
    expect(env(sidecar).NODE_OPTIONS).toBe("--max-old-space-size=356 --max-semi-space-size=4");
  });

  it("refuses a sidecar limit too small for its heap, or a task too small to leave the server room", async () => {
    expect(await problemsOf(dev({ "mcp-sidecar:sidecarMemory": 200 }))).toEqual([
      "sidecarMemory 200 MiB leaves V8 an old space of 76 MiB, below the 96 MiB the sidecar needs (the limit holds the old space, the 12 MiB young generation, 80 MiB outside the heap and a margin)",
    ]);
    expect(await problemsOf(dev({ "mcp-sidecar:sidecarMemory": 1024 }))).toEqual([
      "memory 1024 MiB leaves the server and the agent 0 MiB beside the sidecar's 1024 MiB (sidecarMemory); they need at least 256 MiB: raise memory or lower sidecarMemory",
    ]);
    // The smallest Fargate task still fits the default; a larger sidecar does not.
    expect(await problemsOf(dev({ "mcp-sidecar:cpu": 256, "mcp-sidecar:memory": 512 }))).toEqual([]);
    expect(
      await problemsOf(
        dev({ "mcp-sidecar:cpu": 256, "mcp-sidecar:memory": 512, "mcp-sidecar:sidecarMemory": 384 }),
      ),
    ).toEqual([
      "memory 512 MiB leaves the server and the agent 128 MiB beside the sidecar's 384 MiB (sidecarMemory); they need at least 256 MiB: raise memory or lower sidecarMemory",
    ]);
  });
});

describe("Pulumi.yaml and Pulumi.dev.yaml", () => {
  const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
  const project = parseYaml(read("Pulumi.yaml")) as {
    config: Record<string, { type: string; description?: string; default?: unknown }>;
  };

  it("declares exactly the keys the program reads, each with a type and a description", () => {
    // Pulumi refuses a project key the schema does not declare, so a key read but not declared
    // could never be set.
    const source = read("infra/settings.ts");
    const read_ = new Set(
      [...source.matchAll(/(?:config\.\w+|int|strings)(?:<[^>]*>)?\("(\w+)"/g)].map((m) => m[1] as string),
    );
    expect(read_.size).toBeGreaterThan(20);
    expect(new Set(Object.keys(project.config))).toEqual(read_);
    for (const [key, spec] of Object.entries(project.config)) {
      expect(["string", "integer", "boolean", "array"], key).toContain(spec.type);
      expect(spec.description, key).toBeTruthy();
    }
  });

  it("declares no defaults: each is defined once, in code, and each description quotes it", async () => {
    const { SERVICE_DEFAULTS } = await import("../infra/plan.ts");
    const { STACK_DEFAULTS } = await import("../infra/settings.ts");
    const inCode: Record<string, unknown> = {
      ...SERVICE_DEFAULTS,
      ...STACK_DEFAULTS,
      desiredCount: "minCount",
      readyProbePath: "mcpPath",
    };
    for (const [key, spec] of Object.entries(project.config)) {
      expect(spec.default, `${key} declares a default`).toBeUndefined();
      const quoted = / Default (.+)\.$/.exec(spec.description ?? "")?.[1];
      if (key in inCode) {
        const value = inCode[key];
        expect(quoted, key).toBe(typeof value === "object" ? JSON.stringify(value) : String(value));
      } else {
        expect(quoted, `${key} quotes a default the code does not have`).toBeUndefined();
      }
    }
  });

  it("the dev stack sets only declared keys (and aws:region)", () => {
    const dev = parseYaml(read("Pulumi.dev.yaml")) as { config: Record<string, unknown> };
    const undeclared = Object.keys(dev.config).filter(
      (key) => key !== "aws:region" && !(key.replace(/^mcp-sidecar:/, "") in project.config),
    );
    expect(undeclared).toEqual([]);
  });
});
