// Hot-rotated secrets end to end: the sidecar in front of a real upstream, its secrets from the
// agent emulator over HTTP, clients presenting the API key while it rotates.

import { createHash } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { send } from "./helpers/client.ts";
import { AGENT_TOKEN, startEmulator } from "./helpers/emulator.ts";
import { useTestUpstream } from "./helpers/fixtures.ts";
import { ManualScheduler } from "./helpers/manual-scheduler.ts";
import { freePort } from "./helpers/net.ts";
import { startReferenceServer } from "./helpers/processes.ts";
import { startSidecar } from "./helpers/sidecar.ts";
import { readBody } from "./helpers/upstream.ts";

const agentToken = () => AGENT_TOKEN;
const fingerprint = (value: string) => createHash("sha256").update(value).digest("hex").slice(0, 12);
const ACCEPT_BOTH = "application/json, text/event-stream";

const upstream = useTestUpstream();

function toolCall(id: number, name: string, args: Record<string, unknown> = {}) {
  return JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
}

describe("--auth-secret", () => {
  it("requires Authorization: Bearer <key>, answers 401 with WWW-Authenticate, and never forwards the header", async () => {
    const agent = await startEmulator({ "mcp/api-key": "s3cr3t-api-key-1" });
    const { url } = await startSidecar(
      upstream.url,
      ["--auth-secret", "mcp/api-key", "--secrets-agent", agent.url.origin, "--ready-probe", "tcp"],
      { agentToken },
    );
    await expect.poll(() => send(new URL("/ready", url)).then((r) => r.status)).toBe(200);

    const missing = await send(new URL("/mcp", url), { method: "POST", body: toolCall(1, "echo") });
    expect(missing.status).toBe(401);
    // RFC 6750 §3.1: no error code when the request carried no credentials.
    expect(missing.headers["www-authenticate"]).toBe('Bearer realm="mcp-sidecar"');
    // A JSON-RPC request gets a JSON-RPC error with its id: an MCP client shows the reason.
    expect(missing.json()).toEqual({
      jsonrpc: "2.0",
      id: 1,
      error: {
        code: -32000,
        message: "an API key is required: Authorization: Bearer <key>",
        data: { code: "MCP_SIDECAR_UNAUTHORIZED", status: 401 },
      },
    });
    const wrong = await send(new URL("/mcp", url), {
      method: "POST",
      headers: { authorization: "Bearer nope" },
      body: toolCall(2, "echo"),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers["www-authenticate"]).toBe(
      'Bearer realm="mcp-sidecar", error="invalid_token", error_description="the API key matches no current or previous version"',
    );
    expect(wrong.json()).toMatchObject({ id: 2, error: { data: { code: "MCP_SIDECAR_UNAUTHORIZED" } } });
    // Not JSON-RPC (a GET stream, a plain body): the sidecar's plain JSON error.
    const get = await send(new URL("/mcp", url), { headers: { accept: "text/event-stream" } });
    expect(get.status).toBe(401);
    expect(get.json()).toMatchObject({ error: { code: "MCP_SIDECAR_UNAUTHORIZED", status: 401 } });
    expect(upstream.seen).toHaveLength(0);

    const ok = await send(new URL("/mcp", url), {
      method: "POST",
      headers: { authorization: "Bearer s3cr3t-api-key-1" },
      body: toolCall(3, "echo"),
    });
    expect(ok.status).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    expect(upstream.seen[0]?.rawHeaders.map((h) => h.toLowerCase())).not.toContain("authorization");
    // Health and readiness stay open.
    expect((await send(new URL("/health", url))).status).toBe(200);
    // The 401s are counted as the front door's refusals, apart from what was forwarded.
    const metrics = (await send(new URL("/metrics", url))).text;
    expect(metrics).toMatch(/^mcp_sidecar_http_requests_total\{route="rejected",status="401"\} 3$/m);
    expect(metrics).toMatch(/^mcp_sidecar_http_requests_total\{route="forward",status="200"\} 1$/m);
  });

  it("is not ready until the key is loaded: 503 while the agent is missing, 200 once it appears", async () => {
    const port = await freePort();
    const { url } = await startSidecar(
      upstream.url,
      ["--auth-secret", "mcp/api-key", "--secrets-agent", `http://127.0.0.1:${port}`, "--ready-probe", "tcp"],
      { agentToken },
    );
    const before = await send(new URL("/ready", url));
    expect(before.status).toBe(503);
    expect(before.json()).toMatchObject({
      reasons: [expect.stringContaining("secrets: mcp/api-key not loaded yet")],
    });
    expect(
      (
        await send(new URL("/mcp", url), {
          method: "POST",
          headers: { authorization: "Bearer s3cr3t-early" },
          body: "{}",
        })
      ).status,
    ).toBe(401);
    await startEmulator({ "mcp/api-key": "s3cr3t-early" }, { port });
    await expect
      .poll(() => send(new URL("/ready", url)).then((r) => r.status), { timeout: 15_000 })
      .toBe(200);
    expect(
      (
        await send(new URL("/mcp", url), {
          method: "POST",
          headers: { authorization: "Bearer s3cr3t-early" },
          body: "{}",
        })
      ).status,
    ).toBe(200);
  });
});

describe("--auth-secret under a flood of unknown keys", () => {
  it("accepts a freshly rotated key within about a second of its first use while junk keys arrive at 200/s, with at most one refreshNow per second", async () => {
    const agent = await startEmulator({ "mcp/api-key": "s3cr3t-before" });
    const { url, sidecar } = await startSidecar(
      upstream.url,
      [
        "--auth-secret",
        "mcp/api-key",
        "--secrets-agent",
        agent.url.origin,
        "--ready-probe",
        "tcp",
        // The routine poll must not be what finds the new key.
        "--refresh-interval",
        "10m",
      ],
      { agentToken },
    );
    await expect.poll(() => send(new URL("/ready", url)).then((r) => r.status)).toBe(200);
    const backendGets = () => agent.backend.calls.get("mcp/api-key")?.getSecretValue ?? 0;
    const getsBefore = backendGets();
    const call = (key: string) =>
      send(new URL("/mcp", url), {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: toolCall(1, "echo"),
      }).then((r) => r.status);

    // Junk at 200 requests/s for 3 s (bounded: 600 requests), each answered (401) within its bound.
    const started = performance.now();
    const junk: Promise<number>[] = [];
    const flood = (async () => {
      for (let i = 0; i < 600; i++) {
        junk.push(call(`junk-${i}`));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    // A second into the flood the key rotates; a client starts using the new key at once.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    agent.rotate("mcp/api-key", "s3cr3t-after");
    const firstUse = performance.now();
    const firstStatus = await call("s3cr3t-after");
    const acceptedAfterMs = performance.now() - firstUse;
    const later = await Promise.all(Array.from({ length: 20 }, () => call("s3cr3t-after")));
    await flood;
    const junkStatuses = await Promise.all(junk);
    const seconds = (performance.now() - started) / 1000;
    const onDemand = sidecar.secrets?.tracked.get("mcp/api-key")?.onDemandCount ?? 0;
    const numbers = {
      acceptedAfterMs: Math.round(acceptedAfterMs),
      junkRequests: junkStatuses.length,
      junkPerSecond: Math.round(600 / 3),
      junkStatuses: [...new Set(junkStatuses)],
      onDemandRefreshes: onDemand,
      secretsManagerGets: backendGets() - getsBefore,
      seconds: Math.round(seconds * 10) / 10,
    };
    process.stdout.write(`junk-plus-rotation numbers: ${JSON.stringify(numbers)}\n`);
    expect(firstStatus).toBe(200);
    // One refresh interval (1 s) plus one round trip to the agent, at worst.
    expect(acceptedAfterMs).toBeLessThan(1250);
    expect(later.every((status) => status === 200)).toBe(true);
    expect(numbers.junkStatuses).toEqual([401]);
    // At most one refreshNow per second (each asks for AWSCURRENT and AWSPREVIOUS).
    expect(onDemand).toBeGreaterThan(0);
    expect(onDemand).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    expect(numbers.secretsManagerGets).toBeLessThanOrEqual(2 * onDemand);
  });
});

describe("--inject-header and --secret-file", () => {
  it("sets the header on every upstream request, replacing any value the client sent", async () => {
    const agent = await startEmulator({ "mcp/upstream": '{"key":"s3cr3t-upstream-1","user":"svc"}' });
    const { url } = await startSidecar(
      upstream.url,
      [
        "--inject-header",
        "X-Upstream-Key=mcp/upstream#key",
        "--secrets-agent",
        agent.url.origin,
        "--ready-probe",
        "tcp",
      ],
      {
        agentToken,
      },
    );
    await expect.poll(() => send(new URL("/ready", url)).then((r) => r.status)).toBe(200);
    await send(new URL("/mcp", url), {
      method: "POST",
      headers: { "x-upstream-key": "spoofed-by-client" },
      body: "{}",
    });
    const raw = upstream.seen.at(-1)?.rawHeaders ?? [];
    const values = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === "x-upstream-key");
    expect(values).toEqual(["s3cr3t-upstream-1"]);
  });

  it("reaches the reference server by header and by file: secret_fingerprint reports the value's fingerprint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sidecar-secrets-"));
    const file = join(dir, "upstream-key");
    const agent = await startEmulator({ "mcp/upstream": "s3cr3t-upstream-v1" });
    const server = await startReferenceServer([
      "--stateless",
      "--json-response",
      "--secret-header",
      "X-Upstream-Key",
      "--secret-file",
      file,
    ]);
    const { url } = await startSidecar(
      server.origin,
      [
        "--inject-header",
        "X-Upstream-Key=mcp/upstream",
        "--secret-file",
        `${file}=mcp/upstream`,
        "--secrets-agent",
        agent.url.origin,
      ],
      {
        agentToken,
      },
    );
    await expect.poll(() => send(new URL("/ready", url)).then((r) => r.status)).toBe(200);
    const response = await send(new URL("/mcp", url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT_BOTH },
      body: toolCall(1, "secret_fingerprint"),
    });
    const result = (response.json() as { result: { structuredContent: Record<string, string> } }).result
      .structuredContent;
    expect(result).toEqual({
      header: fingerprint("s3cr3t-upstream-v1"),
      file: fingerprint("s3cr3t-upstream-v1"),
    });
  });
});

describe("rotation under load", () => {
  it("100 clients switching keys at random moments while both secrets rotate: zero 401s; the new upstream value is used within refresh interval + agent TTL", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rotation-"));
    const file = join(dir, "upstream-key");
    const REFRESH_MS = 500;
    const TTL_MS = 1000;
    const agent = await startEmulator(
      { "mcp/api-key": "s3cr3t-key-v1", "mcp/upstream": "s3cr3t-upstream-v1" },
      { cache: { ttlMs: TTL_MS, size: 1000, ignoreTransientErrors: true } },
    );
    const server = await startReferenceServer([
      "--stateless",
      "--json-response",
      "--secret-header",
      "X-Upstream-Key",
      "--secret-file",
      file,
    ]);
    const { url, sidecar, logs } = await startSidecar(
      server.origin,
      [
        "--auth-secret",
        "mcp/api-key",
        "--inject-header",
        "X-Upstream-Key=mcp/upstream",
        "--secret-file",
        `${file}=mcp/upstream`,
        "--secrets-agent",
        agent.url.origin,
        "--refresh-interval",
        `${REFRESH_MS}ms`,
      ],
      { agentToken },
    );
    await expect.poll(() => send(new URL("/ready", url)).then((r) => r.status)).toBe(200);
    const mcp = new URL("/mcp", url);
    const call = (key: string, id: number) =>
      send(mcp, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: ACCEPT_BOTH },
        body: toolCall(id, "echo", { message: "x" }),
      });

    const statuses = new Map<number, number>();
    let rotatedAt = 0;
    let stop = false;
    const rotation = Promise.withResolvers<void>();
    const WORKERS = 100;
    const workers = Array.from({ length: WORKERS }, async (_, worker) => {
      let key = "s3cr3t-key-v1";
      let afterSwitch = 0;
      // Each client switches at its own moment after the rotation: some at once (before the
      // sidecar's next poll), some after it, some after the agent's TTL.
      const switchAfterMs = (worker * 37) % 2500;
      let id = worker * 1_000_000;
      while (!stop) {
        if (rotatedAt && key === "s3cr3t-key-v1" && performance.now() - rotatedAt >= switchAfterMs)
          key = "s3cr3t-key-v2";
        // A transport failure counts as a failed request (status 0), never as an unhandled error.
        const status = await call(key, id++).then(
          (response) => response.status,
          () => 0,
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (key === "s3cr3t-key-v2" && ++afterSwitch >= 3) return;
        if (!rotatedAt) await rotation.promise;
      }
    });

    // Let every client make calls with the old key, then rotate both secrets in "Secrets Manager".
    await expect
      .poll(() => [...statuses.values()].reduce((a, b) => a + b, 0))
      .toBeGreaterThanOrEqual(WORKERS);
    agent.rotate("mcp/api-key", "s3cr3t-key-v2");
    agent.rotate("mcp/upstream", "s3cr3t-upstream-v2");
    rotatedAt = performance.now();
    const rotatedAtWall = Date.now();
    rotation.resolve();

    const fp = async () => {
      const response = await send(mcp, {
        method: "POST",
        headers: {
          authorization: "Bearer s3cr3t-key-v2",
          "content-type": "application/json",
          accept: ACCEPT_BOTH,
        },
        body: toolCall(1, "secret_fingerprint"),
      });
      return (response.json() as { result: { structuredContent: Record<string, string> } }).result
        .structuredContent;
    };
    const wanted = { header: fingerprint("s3cr3t-upstream-v2"), file: fingerprint("s3cr3t-upstream-v2") };
    await expect.poll(fp, { timeout: 20_000, interval: 25 }).toEqual(wanted);
    const rotationToUseMs = Math.round(performance.now() - rotatedAt);
    await Promise.race([Promise.all(workers), new Promise((resolve) => setTimeout(resolve, 30_000))]);
    stop = true;
    await Promise.all(workers);

    const tracked = sidecar.secrets?.tracked.get("mcp/api-key");
    const applied = logs.find((line) => line.msg === "secret rotated" && line.secret === "mcp/upstream");
    const numbers = {
      rotationToAppliedMs: Date.parse(String(applied?.time)) - rotatedAtWall,
      requests: [...statuses.values()].reduce((a, b) => a + b, 0),
      statuses: Object.fromEntries(statuses),
      unauthorized: statuses.get(401) ?? 0,
      onDemandRefreshes: tracked?.onDemandCount,
      rotationToObservedByClientMs: rotationToUseMs,
      bound: `refresh ${REFRESH_MS} ms (+10% jitter) + agent TTL ${TTL_MS} ms`,
    };
    console.log("rotation numbers:", JSON.stringify(numbers));
    expect(numbers.unauthorized).toBe(0);
    expect([...statuses.keys()]).toEqual([200]);
    // The 401-free switch for early clients came from the on-demand refresh, not from luck.
    expect(tracked?.onDemandCount).toBeGreaterThanOrEqual(1);
    // The sidecar applied the new value within one refresh interval plus the agent's TTL (with room
    // for a loaded machine's timer delays); how soon a client then observed it is only reported.
    expect(numbers.rotationToAppliedMs).toBeLessThan(REFRESH_MS * 1.1 + TTL_MS + 5000);
  }, 90_000);
});

describe("agent outage (manual clock)", () => {
  it("serves every request through many refresh intervals with the agent down, readiness unchanged; fresh values once it is back", async () => {
    const scheduler = new ManualScheduler();
    const agent = await startEmulator(
      { "mcp/api-key": "s3cr3t-key-1", "mcp/upstream": "s3cr3t-up-1" },
      { cache: { ttlMs: 30_000, size: 1000, ignoreTransientErrors: true } },
      () => scheduler.now(),
    );
    upstream.handle(async (req, res) => {
      await readBody(req);
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    const { url, sidecar } = await startSidecar(
      upstream.url,
      [
        "--auth-secret",
        "mcp/api-key",
        "--inject-header",
        "X-Up=mcp/upstream",
        "--secrets-agent",
        agent.url.origin,
        "--ready-probe",
        "tcp",
      ],
      { agentToken, secretsScheduler: scheduler },
    );
    const secrets = sidecar.secrets;
    if (!secrets) throw new Error("secrets not configured");
    scheduler.settle = () => secrets.settled();
    await secrets.settled();
    expect((await send(new URL("/ready", url))).status).toBe(200);

    await agent.stop();
    let failed = 0;
    let served = 0;
    for (let interval = 0; interval < 20; interval++) {
      await scheduler.advance(30_000);
      const response = await send(new URL("/mcp", url), {
        method: "POST",
        headers: { authorization: "Bearer s3cr3t-key-1" },
        body: toolCall(interval, "echo"),
      });
      if (response.status === 200) served++;
      else failed++;
      expect((await send(new URL("/ready", url))).status).toBe(200);
    }
    expect({ served, failed }).toEqual({ served: 20, failed: 0 });
    const seen = upstream.seen.at(-1)?.rawHeaders ?? [];
    expect(seen[seen.findIndex((h) => h.toLowerCase() === "x-up") + 1]).toBe("s3cr3t-up-1");

    agent.rotate("mcp/upstream", "s3cr3t-up-2");
    await agent.start();
    await scheduler.advance(2 * 30_000);
    await send(new URL("/mcp", url), {
      method: "POST",
      headers: { authorization: "Bearer s3cr3t-key-1" },
      body: toolCall(99, "echo"),
    });
    const after = upstream.seen.at(-1)?.rawHeaders ?? [];
    expect(after[after.findIndex((h) => h.toLowerCase() === "x-up") + 1]).toBe("s3cr3t-up-2");
    console.log(
      "outage numbers:",
      JSON.stringify({ intervals: 20, requestsServed: served, requestsFailed: failed }),
    );
  });
});
