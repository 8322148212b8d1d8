// The secrets poller and deliveries on a manual clock, against the real emulator over HTTP.
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentEmulator } from "../agent/emulator/emulator.ts";
import { AgentClient } from "../proxy/secrets/agent-client.ts";
import { SecretsRuntime, type SecretsSettings } from "../proxy/secrets/runtime.ts";
import { PRIOR_CURRENT_MAX_MS, resolveValue, TrackedSecret } from "../proxy/secrets/secret-state.ts";
import {
  InvalidSecretSpec,
  parseFileDelivery,
  parseHeaderDelivery,
  parseSecretRef,
} from "../proxy/secrets/spec.ts";
import { createLogger } from "../proxy/telemetry/logger.ts";
import { AGENT_TOKEN, startEmulator, stopAllEmulators } from "./helpers/emulator.ts";
import { ManualScheduler } from "./helpers/manual-scheduler.ts";
import { freePort } from "./helpers/net.ts";

const clients: AgentClient[] = [];
const runtimes: SecretsRuntime[] = [];
afterEach(async () => {
  for (const runtime of runtimes) runtime.stop();
  runtimes.length = 0;
  await Promise.all(clients.map((c) => c.close()));
  clients.length = 0;
  await stopAllEmulators();
});

const NONE: SecretsSettings = {
  refreshIntervalMs: 30_000,
  maxStalenessMs: 0,
  authSecret: undefined,
  injectHeaders: [],
  secretFiles: [],
};

function setup(agentUrl: URL, settings: Partial<SecretsSettings>, scheduler = new ManualScheduler()) {
  const client = new AgentClient({ agent: agentUrl, token: () => AGENT_TOKEN, timeoutMs: 2000 });
  clients.push(client);
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger(
    "debug",
    new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const line of chunk.toString().split("\n"))
          if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const runtime = new SecretsRuntime(client, { ...NONE, ...settings }, logger, scheduler);
  runtimes.push(runtime);
  scheduler.settle = () => runtime.settled();
  return { runtime, scheduler, logs };
}

/** An emulator on the manual clock, so its cache TTL runs on the same virtual time as the poller. */
async function clockedEmulator(
  scheduler: ManualScheduler,
  secrets: Record<string, unknown>,
  ttlSeconds = 300,
  port = 0,
): Promise<AgentEmulator> {
  return startEmulator(
    secrets,
    { port, cache: { ttlMs: ttlSeconds * 1000, size: 1000, ignoreTransientErrors: true } },
    () => scheduler.now(),
  );
}

describe("delivery specs", () => {
  it("parses SECRET_ID[#key], names and ARNs", () => {
    expect(parseSecretRef("mcp/api-key")).toEqual({
      secretId: "mcp/api-key",
      jsonKey: undefined,
      label: "mcp/api-key",
    });
    expect(
      parseSecretRef("arn:aws:secretsmanager:eu-west-1:123456789012:secret:mcp/db-AbCdEf#password"),
    ).toMatchObject({
      secretId: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mcp/db-AbCdEf",
      jsonKey: "password",
    });
    expect(parseHeaderDelivery("X-Api-Key=mcp/upstream#key")).toMatchObject({
      header: "X-Api-Key",
      ref: { secretId: "mcp/upstream", jsonKey: "key" },
    });
    expect(parseFileDelivery("/run/secrets/db=mcp/db")).toMatchObject({
      path: "/run/secrets/db",
      ref: { secretId: "mcp/db" },
    });
  });

  it.each([
    [() => parseSecretRef("bad name"), "not a secret name"],
    [() => parseSecretRef("mcp/x#"), "empty JSON key"],
    [() => parseHeaderDelivery("Host=mcp/x"), "managed by HTTP"],
    [() => parseHeaderDelivery("Bad Header=mcp/x"), "not a header name"],
    [() => parseHeaderDelivery("=mcp/x"), "is not Header-Name=SECRET_ID"],
    [() => parseFileDelivery("relative/path=mcp/x"), "not an absolute path"],
  ])("rejects with a message naming the problem (%#)", (parse, message) => {
    expect(parse).toThrow(InvalidSecretSpec);
    expect(parse).toThrow(message);
  });
});

describe("resolveValue", () => {
  const version = (secretString?: string, secretBinary?: Buffer) => ({
    versionId: "v",
    secretString,
    secretBinary,
    since: 0,
  });
  it("delivers the whole string, one JSON key, or the binary for files", () => {
    expect(resolveValue(version("plain"), undefined, true)).toEqual({ ok: true, value: "plain" });
    expect(resolveValue(version('{"k":"v","n":5}'), "k", true)).toEqual({ ok: true, value: "v" });
    expect(resolveValue(version('{"k":"v","n":5}'), "n", true)).toEqual({ ok: true, value: "5" });
    expect(resolveValue(version(undefined, Buffer.from([1, 2])), undefined, false)).toEqual({
      ok: true,
      value: Buffer.from([1, 2]),
    });
  });
  it("explains what is wrong without quoting the value", () => {
    const results = [
      resolveValue(version("s3cr3t-not-json"), "k", true),
      resolveValue(version('{"other":"s3cr3t"}'), "k", true),
      resolveValue(version('{"k":{"deep":"s3cr3t"}}'), "k", true),
      resolveValue(version(undefined, Buffer.from("s3cr3t")), undefined, true),
    ];
    expect(results.every((r) => !r.ok)).toBe(true);
    expect(JSON.stringify(results)).not.toContain("s3cr3t");
  });
});

describe("TrackedSecret", () => {
  const s = (versionId: string, value = versionId) => ({
    arn: null,
    name: null,
    versionId,
    versionStages: [],
    secretString: value,
    secretBinary: undefined,
  });
  const accepted = (secret: TrackedSecret) => secret.acceptedVersions().map((v) => v.versionId);

  it("detects a change by VersionId and keeps the prior current until the agent's AWSPREVIOUS catches up", () => {
    const secret = new TrackedSecret("k", true);
    expect(secret.applyCurrent(s("A"), 1)).toBe(true);
    secret.applyPrevious(s("Z"), 1);
    expect(secret.applyCurrent(s("A"), 2)).toBe(false);
    expect(secret.applyCurrent(s("B"), 3)).toBe(true);
    // The agent's AWSPREVIOUS entry is still the pre-rotation one (stale by up to its TTL).
    secret.applyPrevious(s("Z"), 4);
    expect(accepted(secret)).toEqual(["B", "Z", "A"]);
    secret.applyPrevious(s("A"), 5);
    expect(accepted(secret)).toEqual(["B", "A"]);
  });

  it("retires a key rotated out twice between polls once AWSPREVIOUS has moved on", () => {
    const secret = new TrackedSecret("k", true);
    secret.applyCurrent(s("A"), 1);
    secret.applyPrevious(s("Z"), 1);
    secret.applyCurrent(s("C"), 2);
    expect(accepted(secret)).toEqual(["C", "Z", "A"]);
    secret.applyPrevious(s("B"), 3);
    expect(accepted(secret)).toEqual(["C", "B"]);
  });

  it("retires the prior current after PRIOR_CURRENT_MAX_MS even if AWSPREVIOUS never answers", () => {
    const secret = new TrackedSecret("k", true);
    secret.applyCurrent(s("A"), 0);
    secret.applyPrevious(undefined, 0);
    secret.applyCurrent(s("B"), 10);
    secret.applyPrevious(undefined, 10 + PRIOR_CURRENT_MAX_MS);
    expect(accepted(secret)).toEqual(["B", "A"]);
    secret.applyPrevious(undefined, 11 + PRIOR_CURRENT_MAX_MS);
    expect(accepted(secret)).toEqual(["B"]);
  });

  it("never rolls back to an answer from a fetch that started before the one applied", () => {
    const secret = new TrackedSecret("k", false);
    secret.applyCurrent(s("A"), 1, 1);
    expect(secret.applyCurrent(s("B"), 2, 3)).toBe(true);
    expect(secret.applyCurrent(s("A"), 3, 2)).toBe(false);
    expect(secret.current?.versionId).toBe("B");
  });

  it("goes stale on AWSCURRENT failures only: AWSPREVIOUS answers do not count as a refresh", () => {
    const secret = new TrackedSecret("k", true);
    secret.applyCurrent(s("A"), 1);
    secret.recordFailure("unreachable", "x", 2);
    secret.applyPrevious(undefined, 3);
    secret.recordFailure("timeout", "y", 4, "previous");
    expect(secret.lastSuccessAt).toBe(1);
    expect(secret.consecutiveFailures).toBe(1);
    expect(Object.fromEntries(secret.failures)).toEqual({ unreachable: 1, timeout: 1 });
  });
});

describe("SecretsRuntime", () => {
  it("starts 503, retries with capped exponential backoff while the agent is missing, then polls on the interval with jitter", async () => {
    const port = await freePort();
    const scheduler = new ManualScheduler();
    const { runtime } = setup(
      new URL(`http://127.0.0.1:${port}`),
      { injectHeaders: [parseHeaderDelivery("X-Key=mcp/upstream")] },
      scheduler,
    );
    runtime.start();
    await runtime.settled();
    expect(runtime.check()).toMatchObject({
      ok: false,
      reason: expect.stringContaining("mcp/upstream not loaded yet (unreachable"),
    });
    await scheduler.advance(20_000);
    // 200 ms doubling, full jitter (0.75 here), capped at 10 s.
    expect(scheduler.delays.slice(0, 8)).toEqual([150, 300, 600, 1200, 2400, 4800, 7500, 7500]);
    await clockedEmulator(scheduler, { "mcp/upstream": "s3cr3t-upstream" }, 300, port);
    await scheduler.advance(10_000);
    expect(runtime.check()).toEqual({ name: "secrets", ok: true });
    expect(runtime.upstreamHeaders).toEqual(["X-Key", "s3cr3t-upstream"]);
    expect(scheduler.delays.at(-1)).toBe(30_000);
    scheduler.randomValue = 0;
    await scheduler.advance(30_000);
    expect(scheduler.delays.at(-1)).toBe(27_000);
    scheduler.randomValue = 0.999_999;
    await scheduler.advance(30_000);
    expect(Math.round(scheduler.delays.at(-1) as number)).toBe(33_000);
  });

  it("honours the agent's cache: routine polls never send refreshNow, and Secrets Manager sees one DescribeSecret per TTL", async () => {
    const scheduler = new ManualScheduler();
    const agent = await clockedEmulator(
      scheduler,
      { "mcp/upstream": "s3cr3t-upstream", "mcp/api-key": "s3cr3t-key" },
      300,
    );
    const { runtime } = setup(
      agent.url,
      {
        authSecret: parseSecretRef("mcp/api-key"),
        injectHeaders: [parseHeaderDelivery("X-Key=mcp/upstream")],
      },
      scheduler,
    );
    runtime.start();
    await runtime.settled();
    const total = () => [...agent.requests.values()].reduce((a, b) => a + b, 0);
    const agentRequestsBefore = total();
    await scheduler.advance(10 * 60_000);
    const perMinute = (total() - agentRequestsBefore) / 10;
    // mcp/upstream: 2 polls a minute; mcp/api-key: AWSCURRENT and AWSPREVIOUS (a 400 until its first
    // rotation), 2 a minute each.
    expect(perMinute).toBe(6);
    // TTL 300 s, polls every 30 s: expired at the 330 s poll (one DescribeSecret, TTL restarts), next at 660 s.
    expect(agent.backend.calls.get("mcp/upstream")).toEqual({ getSecretValue: 1, describeSecret: 1 });
    console.log("agent requests per minute per secret at steady state:", {
      "mcp/upstream": 2,
      "mcp/api-key (current+previous)": 4,
      secretsManagerCallsIn10Min: agent.backend.calls.get("mcp/upstream"),
    });
  });

  it("keeps the last good values through an agent outage of many intervals, logs it once per ten attempts, and picks up what changed when it is back", async () => {
    const scheduler = new ManualScheduler();
    const agent = await clockedEmulator(
      scheduler,
      { "mcp/upstream": "s3cr3t-before", "mcp/api-key": "s3cr3t-key" },
      30,
    );
    const { runtime, logs } = setup(
      agent.url,
      {
        authSecret: parseSecretRef("mcp/api-key"),
        injectHeaders: [parseHeaderDelivery("X-Key=mcp/upstream")],
      },
      scheduler,
    );
    runtime.start();
    await runtime.settled();
    await agent.stop();
    await scheduler.advance(20 * 30_000);
    expect(runtime.upstreamHeaders).toEqual(["X-Key", "s3cr3t-before"]);
    expect(runtime.checkAuthorization("Bearer s3cr3t-key")).toBe("ok");
    expect(runtime.check().ok).toBe(true);
    const failureLines = logs.filter((line) => line.msg === "secret refresh failed");
    expect(failureLines.length).toBeGreaterThan(0);
    expect(failureLines.length).toBeLessThanOrEqual(8);
    agent.rotate("mcp/upstream", "s3cr3t-after");
    await agent.start();
    await scheduler.advance(2 * 30_000);
    expect(runtime.upstreamHeaders).toEqual(["X-Key", "s3cr3t-after"]);
    expect(logs.some((line) => line.msg === "secret rotated" && line.secret === "mcp/upstream")).toBe(true);
  });

  it("fails readiness when a secret is older than --max-staleness", async () => {
    const scheduler = new ManualScheduler();
    const agent = await clockedEmulator(scheduler, { "mcp/upstream": "s3cr3t-x" });
    const { runtime } = setup(
      agent.url,
      { maxStalenessMs: 120_000, injectHeaders: [parseHeaderDelivery("X-Key=mcp/upstream")] },
      scheduler,
    );
    runtime.start();
    await runtime.settled();
    await agent.stop();
    await scheduler.advance(119_000);
    expect(runtime.check().ok).toBe(true);
    await scheduler.advance(30_000);
    expect(runtime.check()).toMatchObject({ ok: false, reason: expect.stringContaining("--max-staleness") });
    expect(runtime.upstreamHeaders).toEqual(["X-Key", "s3cr3t-x"]);
  });

  it("accepts a key the poller has not seen yet after one refreshNow, shared by the requests that wait for it", async () => {
    const scheduler = new ManualScheduler();
    const agent = await clockedEmulator(scheduler, { "mcp/api-key": "s3cr3t-v1" });
    const { runtime } = setup(agent.url, { authSecret: parseSecretRef("mcp/api-key") }, scheduler);
    runtime.start();
    await runtime.settled();
    agent.rotate("mcp/api-key", "s3cr3t-v2");
    expect(runtime.checkAuthorization("Bearer s3cr3t-v2")).toBe("unknown");
    expect(
      await Promise.all([
        runtime.refreshAuthOnDemand("Bearer s3cr3t-v2"),
        runtime.refreshAuthOnDemand("Bearer s3cr3t-v2"),
        runtime.refreshAuthOnDemand("Bearer s3cr3t-v2"),
      ]),
    ).toEqual([true, true, true]);
    expect(runtime.checkAuthorization("Bearer s3cr3t-v2")).toBe("ok");
    expect(runtime.checkAuthorization("bearer s3cr3t-v1")).toBe("ok");
    const tracked = runtime.tracked.get("mcp/api-key");
    expect(tracked?.onDemandCount).toBe(1);
    // Within the second, an unknown key waits for the next refresh instead of starting one.
    const getsBefore = agent.backend.calls.get("mcp/api-key")?.getSecretValue;
    const junk = runtime.refreshAuthOnDemand("Bearer nope");
    await scheduler.advance(999);
    expect(tracked?.onDemandCount).toBe(1);
    expect(agent.backend.calls.get("mcp/api-key")?.getSecretValue).toBe(getsBefore);
    await scheduler.advance(1);
    expect(await junk).toBe(false);
    expect(tracked?.onDemandCount).toBe(2);
    expect(runtime.checkAuthorization(undefined)).toBe("missing");
    expect(runtime.checkAuthorization("Basic czNjcjN0")).toBe("missing");
    expect(runtime.checkAuthorization("Bearer nope")).toBe("unknown");
  });

  it("writes secret files atomically with mode 0400, and rewrites them on rotation", async () => {
    const dir = await mkdtemp(join(tmpdir(), "secret-files-"));
    const scheduler = new ManualScheduler();
    const agent = await clockedEmulator(scheduler, { "mcp/db": '{"password":"s3cr3t-db-1"}' }, 30);
    const path = join(dir, "nested", "db-password");
    const { runtime } = setup(
      agent.url,
      { secretFiles: [parseFileDelivery(`${path}=mcp/db#password`)] },
      scheduler,
    );
    runtime.start();
    await runtime.settled();
    expect(await readFile(path, "utf8")).toBe("s3cr3t-db-1");
    expect((await stat(path)).mode & 0o777).toBe(0o400);
    agent.rotate("mcp/db", '{"password":"s3cr3t-db-2"}');
    await scheduler.advance(60_000);
    expect(await readFile(path, "utf8")).toBe("s3cr3t-db-2");
    expect((await stat(path)).mode & 0o777).toBe(0o400);
    expect(await readdir(join(dir, "nested"))).toEqual(["db-password"]);
  });

  it("makes an unusable secret a readiness reason, naming the delivery, not the value", async () => {
    const scheduler = new ManualScheduler();
    const agent = await clockedEmulator(scheduler, { "mcp/db": "s3cr3t-plain" });
    const { runtime } = setup(
      agent.url,
      { injectHeaders: [parseHeaderDelivery("X-Db=mcp/db#password")] },
      scheduler,
    );
    runtime.start();
    await runtime.settled();
    const check = runtime.check();
    expect(check).toMatchObject({
      ok: false,
      reason: '--inject-header X-Db=mcp/db#password is not JSON (wanted key "password")',
    });
    expect(JSON.stringify(check)).not.toContain("s3cr3t");
  });
});
