// The sidecar's agent client against every failure mode of the agent, on the emulator.
import { once } from "node:events";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { AgentClient } from "../proxy/secrets/agent-client.ts";
import { AGENT_TOKEN, startEmulator, stopAllEmulators } from "./helpers/emulator.ts";
import { freePort } from "./helpers/net.ts";

const SECRETS = { "mcp/api-key": "s3cr3t-client-key" };
const clients: AgentClient[] = [];

function client(agent: URL, token = AGENT_TOKEN, timeoutMs = 2000): AgentClient {
  const instance = new AgentClient({ agent, token: () => token, timeoutMs });
  clients.push(instance);
  return instance;
}

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  clients.length = 0;
  await stopAllEmulators();
});

describe("AgentClient", () => {
  it("reads a secret: version id, stages, value", async () => {
    const agent = await startEmulator(SECRETS);
    const result = await client(agent.url).get({ secretId: "mcp/api-key" });
    expect(result).toMatchObject({
      ok: true,
      secret: { versionStages: ["AWSCURRENT"], secretString: "s3cr3t-client-key", name: "mcp/api-key" },
    });
  });

  it("asks for a stage and for refreshNow as the agent spells them", async () => {
    const agent = await startEmulator(SECRETS);
    const c = client(agent.url);
    agent.rotate("mcp/api-key", "s3cr3t-rotated");
    expect(await c.get({ secretId: "mcp/api-key", refreshNow: true })).toMatchObject({
      ok: true,
      secret: { secretString: "s3cr3t-rotated" },
    });
    expect(await c.get({ secretId: "mcp/api-key", versionStage: "AWSPREVIOUS" })).toMatchObject({
      ok: true,
      secret: { secretString: "s3cr3t-client-key" },
    });
  });

  it.each([
    ["throttling", "throttled", 400],
    ["access-denied", "access_denied", 400],
    ["internal", "server_error", 500],
    ["unreachable", "server_error", 502],
    ["timeout", "server_error", 504],
  ] as const)("classifies Secrets Manager failing with %s as %s", async (failure, kind, status) => {
    const agent = await startEmulator(SECRETS);
    agent.failBackend(failure);
    expect(await client(agent.url).get({ secretId: "mcp/api-key", refreshNow: true })).toMatchObject({
      ok: false,
      kind,
      status,
    });
  });

  it("classifies an unknown secret, a wrong token and an exhausted max_conn", async () => {
    const agent = await startEmulator(SECRETS);
    expect(await client(agent.url).get({ secretId: "mcp/nope" })).toMatchObject({
      ok: false,
      kind: "not_found",
      status: 400,
      detail: "400 ResourceNotFoundException",
    });
    expect(await client(agent.url, "wrong-token").get({ secretId: "mcp/api-key" })).toMatchObject({
      ok: false,
      kind: "bad_token",
      status: 403,
    });
    const busy = await startEmulator(SECRETS, { maxConn: 1 });
    // Another process holds the agent's only connection.
    const holder = connect(Number(busy.url.port), "127.0.0.1");
    await once(holder, "connect");
    expect(await client(busy.url).get({ secretId: "mcp/api-key" })).toMatchObject({
      ok: false,
      kind: "too_many_connections",
      status: 429,
    });
    holder.destroy();
  });

  it("reports a down agent as unreachable and a slow one as a timeout", async () => {
    expect(
      await client(new URL(`http://127.0.0.1:${await freePort()}`)).get({ secretId: "x" }),
    ).toMatchObject({ ok: false, kind: "unreachable" });
    const agent = await startEmulator(SECRETS);
    agent.faults.slowMs = 1000;
    expect(await client(agent.url, AGENT_TOKEN, 100).get({ secretId: "mcp/api-key" })).toMatchObject({
      ok: false,
      kind: "timeout",
    });
  });

  it("retries once when the agent cuts the connection without answering (its 61 s cut), and not twice", async () => {
    const agent = await startEmulator(SECRETS);
    const c = client(agent.url);
    agent.faults.cutNextRequests = 1;
    expect(await c.get({ secretId: "mcp/api-key" })).toMatchObject({ ok: true });
    agent.faults.cutNextRequests = 2;
    expect(await c.get({ secretId: "mcp/api-key" })).toMatchObject({ ok: false, kind: "unreachable" });
  });

  it("never puts a secret value in a failure", async () => {
    const agent = await startEmulator({ "mcp/json": '{"password":"s3cr3t-in-json"}' });
    agent.failBackend("throttling");
    const result = await client(agent.url).get({ secretId: "mcp/json", refreshNow: true });
    expect(JSON.stringify(result)).not.toContain("s3cr3t");
  });
});
