// The agent emulator against each point of ../shared/docs/secrets-manager-agent.md (and the agent
// 2.0.0 source where it is more precise). Raw HTTP on real sockets, so headers and bytes are seen
// exactly as a client sees them.

import { mkdtemp, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentCache } from "../agent/emulator/agent-cache.ts";
import { SecretsBackend } from "../agent/emulator/backend.ts";
import { type AgentConfigError, parseAgentConfig, readAgentConfig } from "../agent/emulator/config.ts";
import {
  AgentEmulator,
  DEFAULT_EMULATOR_SETTINGS,
  type EmulatorSettings,
} from "../agent/emulator/emulator.ts";
import { parseSecretsDocument, SecretsFileError } from "../agent/emulator/secrets-file.ts";
import { AgentTokenError, readAgentToken } from "../proxy/secrets/agent-token.ts";
import { jsonLine, node, startProcess, stopAllProcesses } from "./helpers/processes.ts";

const TOKEN = "ssrf-token-123";
const running: AgentEmulator[] = [];

afterEach(async () => {
  await Promise.all(running.map((emulator) => emulator.stop()));
  running.length = 0;
  await stopAllProcesses();
});

const DOCUMENT = {
  secrets: {
    "mcp/api-key": {
      arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-AbCdEf",
      versions: [
        {
          id: "11111111-1111-4111-a111-111111111111",
          string: "s3cr3t-old",
          stages: ["AWSPREVIOUS"],
          created: 1569534789.046,
        },
        {
          id: "22222222-2222-4222-a222-222222222222",
          string: "s3cr3t-new",
          stages: ["AWSCURRENT"],
          created: 1569534800,
        },
      ],
    },
    "mcp/blob": {
      versions: [{ binary: Buffer.from([0, 1, 2, 250]).toString("base64"), stages: ["AWSCURRENT"] }],
    },
    "mcp/quoted": 'has "quotes"',
  },
};

async function emulator(overrides: Partial<EmulatorSettings> = {}, now: () => number = Date.now) {
  const instance = new AgentEmulator(
    parseSecretsDocument(DOCUMENT, "test", 1_700_000_000_000),
    { ...DEFAULT_EMULATOR_SETTINGS, port: 0, token: TOKEN, ...overrides },
    now,
  );
  running.push(instance);
  await instance.start();
  return instance;
}

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
  raw: string;
}

/** One request on its own connection, read to the end: the exact bytes the agent would send. */
async function raw(
  instance: AgentEmulator,
  method: string,
  path: string,
  headers: [string, string][] = [["X-Aws-Parameters-Secrets-Token", TOKEN]],
): Promise<RawResponse> {
  const socket = connect(Number(instance.url.port), "127.0.0.1");
  const lines = [
    `${method} ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Connection: close",
    ...headers.map(([n, v]) => `${n}: ${v}`),
  ];
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  let text = "";
  socket.setEncoding("latin1");
  for await (const chunk of socket) text += chunk;
  const [head = "", body = ""] = [
    text.slice(0, text.indexOf("\r\n\r\n")),
    text.slice(text.indexOf("\r\n\r\n") + 4),
  ];
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const parsed = new Map(
    headerLines.map((line) => [
      line.slice(0, line.indexOf(":")).toLowerCase(),
      line.slice(line.indexOf(":") + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(" ")[1]), headers: parsed, body, raw: text };
}

const get = (instance: AgentEmulator, path: string) => raw(instance, "GET", path);

describe("listening and the order of checks", () => {
  it("answers /ping without a token: 200 healthy, no Content-Type, no trailing newline", async () => {
    const agent = await emulator();
    const response = await raw(agent, "GET", "/ping", []);
    expect(response.status).toBe(200);
    expect(response.body).toBe("healthy");
    expect(response.headers.has("content-type")).toBe(false);
    expect(response.headers.get("content-length")).toBe("7");
    expect(response.headers.has("date")).toBe(true);
    expect(agent.url.hostname).toBe("127.0.0.1");
  });

  it.each(["POST", "HEAD", "PUT"])(
    "refuses %s /ping with 405 (the method check applies to /ping too)",
    async (method) => {
      const response = await raw(await emulator(), method, "/ping", []);
      expect(response.status).toBe(405);
      if (method !== "HEAD") expect(response.body).toBe("Not allowed");
    },
  );

  it("checks the token before the path: unknown path is 403 without a token, 404 with it, 405 for POST with it", async () => {
    const agent = await emulator();
    expect(await raw(agent, "GET", "/nope", [])).toMatchObject({ status: 403, body: "Bad Token" });
    expect(await raw(agent, "GET", "/nope")).toMatchObject({ status: 404, body: "Not found" });
    expect(await raw(agent, "POST", "/nope")).toMatchObject({ status: 405, body: "Not allowed" });
  });

  it("refuses any X-Forwarded-For with 400 Forwarded, before the token, except on /ping", async () => {
    const agent = await emulator();
    expect(
      await raw(agent, "GET", "/secretsmanager/get?secretId=mcp/api-key", [
        ["X-Forwarded-For", "10.0.0.1"],
        ["X-Aws-Parameters-Secrets-Token", TOKEN],
      ]),
    ).toMatchObject({ status: 400, body: "Forwarded" });
    expect(
      await raw(agent, "GET", "/secretsmanager/get?secretId=x", [["X-Forwarded-For", ""]]),
    ).toMatchObject({ status: 400, body: "Forwarded" });
    expect(await raw(agent, "GET", "/ping", [["X-Forwarded-For", "10.0.0.1"]])).toMatchObject({
      status: 200,
    });
  });

  it("takes the token from any configured header, names case-insensitive, values byte for byte, first value only", async () => {
    const agent = await emulator();
    const path = "/secretsmanager/get?secretId=mcp/api-key";
    expect((await raw(agent, "GET", path, [["x-vault-token", TOKEN]])).status).toBe(200);
    expect((await raw(agent, "GET", path, [["X-AWS-PARAMETERS-SECRETS-TOKEN", TOKEN]])).status).toBe(200);
    expect(
      (await raw(agent, "GET", path, [["X-Aws-Parameters-Secrets-Token", TOKEN.toUpperCase()]])).status,
    ).toBe(403);
    expect(
      (
        await raw(agent, "GET", path, [
          ["X-Aws-Parameters-Secrets-Token", "wrong"],
          ["X-Aws-Parameters-Secrets-Token", TOKEN],
        ])
      ).status,
    ).toBe(403);
    const custom = await emulator({ ssrfHeaders: ["X-My-Token"] });
    expect((await raw(custom, "GET", path, [["X-Aws-Parameters-Secrets-Token", TOKEN]])).status).toBe(403);
    expect((await raw(custom, "GET", path, [["x-my-token", TOKEN]])).status).toBe(200);
  });
});

describe("answers", () => {
  it("query style: compact JSON in the agent's key order, CreatedDate a string with its fraction, no Content-Type", async () => {
    const response = await get(
      await emulator(),
      "/secretsmanager/get?secretId=mcp/api-key&versionStage=AWSPREVIOUS",
    );
    expect(response.status).toBe(200);
    expect(response.headers.has("content-type")).toBe(false);
    expect(response.body).toBe(
      '{"ARN":"arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-AbCdEf","Name":"mcp/api-key","VersionId":"11111111-1111-4111-a111-111111111111","SecretString":"s3cr3t-old","VersionStages":["AWSPREVIOUS"],"CreatedDate":"1569534789.046"}',
    );
  });

  it("prints whole-second CreatedDate without a decimal point, and AWSCURRENT by default", async () => {
    const body = JSON.parse(
      (await get(await emulator(), "/secretsmanager/get?secretId=mcp/api-key")).body,
    ) as Record<string, unknown>;
    expect(body).toMatchObject({
      VersionId: "22222222-2222-4222-a222-222222222222",
      CreatedDate: "1569534800",
      VersionStages: ["AWSCURRENT"],
    });
  });

  it("serves a binary secret as padded base64 SecretBinary, without SecretString", async () => {
    const body = JSON.parse((await get(await emulator(), "/v1/mcp/blob")).body) as Record<string, unknown>;
    expect(body.SecretBinary).toBe("AAEC+g==");
    expect(Object.keys(body)).toEqual([
      "ARN",
      "Name",
      "VersionId",
      "SecretBinary",
      "VersionStages",
      "CreatedDate",
    ]);
  });

  it("path style: the id is the rest of the path, slashes kept, never percent-decoded, dot segments normalised", async () => {
    const agent = await emulator();
    expect((await get(agent, "/v1/mcp/api-key")).status).toBe(200);
    expect((await get(agent, "/v1/mcp/x/../api-key")).status).toBe(200);
    expect(await get(agent, "/v1/mcp%2Fapi-key")).toMatchObject({
      status: 400,
      body: '{"__type":"ResourceNotFoundException", "message":"Secrets Manager can\'t find the specified secret."}',
    });
    expect((await get(agent, "/v1/mcp/api-key?versionStage=AWSPREVIOUS")).body).toContain("s3cr3t-old");
    expect((await get(await emulator({ pathPrefix: "/secrets/" }), "/secrets/mcp/api-key")).status).toBe(200);
  });

  it.each([
    ["/secretsmanager/get?secretId=mcp/api-key&foo=1", "unknown parameter: foo"],
    ["/secretsmanager/get?SecretId=mcp/api-key", "unknown parameter: SecretId"],
    ["/secretsmanager/get", "missing parameter secretId"],
    ["/secretsmanager/get?secretId=", "missing parameter secretId"],
    ["/secretsmanager/get?foo=1", "unknown parameter: foo"],
    ["/secretsmanager/get?refreshNow=maybe&foo=1", "invalid refreshNow value"],
    ["/secretsmanager/get?secretId=mcp/api-key&refreshNow=", "invalid refreshNow value"],
    ["/v1/mcp/api-key?secretId=x", "unknown parameter: secretId"],
    ["/v1/", "missing secret ID"],
  ])("GET %s -> 400 %j (plain text)", async (path, message) => {
    const response = await get(await emulator(), path);
    expect(response.status).toBe(400);
    expect(response.body).toBe(message);
    expect(response.headers.has("content-type")).toBe(false);
  });

  it.each(["true", "TRUE", "1", "false", "False", "0"])("accepts refreshNow=%s", async (value) => {
    expect(
      (await get(await emulator(), `/secretsmanager/get?secretId=mcp/api-key&refreshNow=${value}`)).status,
    ).toBe(200);
  });

  it("form-decodes names and values (+ is a space) and lets the last duplicate win", async () => {
    const agent = await emulator();
    expect((await get(agent, "/secretsmanager/get?secretId=nope&secretId=mcp%2Fapi-key")).status).toBe(200);
    expect((await get(agent, "/secretsmanager/get?secret%49d=mcp/api-key")).status).toBe(200);
    expect(
      (await get(agent, "/secretsmanager/get?secretId=mcp/api-key&versionStage=AWS+PREVIOUS")).body,
    ).toContain("staging label: AWS PREVIOUS");
  });

  it("formats backend errors by string formatting: a space after the comma, the message unescaped; InternalFailure alone", async () => {
    const agent = await emulator();
    expect((await get(agent, "/secretsmanager/get?secretId=mcp/api-key&versionId=nope")).body).toBe(
      '{"__type":"ResourceNotFoundException", "message":"Secrets Manager can\'t find the specified secret value for VersionId: nope"}',
    );
    agent.failBackend("internal");
    expect(await get(agent, "/secretsmanager/get?secretId=mcp/quoted&refreshNow=true")).toMatchObject({
      status: 500,
      body: '{"__type":"InternalFailure"}',
    });
    agent.failBackend("timeout");
    expect(await get(agent, "/v1/mcp/quoted?refreshNow=1")).toMatchObject({
      status: 504,
      body: '{"__type":"TimeoutError", "message":"Timeout"}',
    });
    agent.failBackend("unreachable");
    expect(await get(agent, "/v1/mcp/quoted?refreshNow=1")).toMatchObject({
      status: 502,
      body: '{"__type":"ConnectionError", "message":"Read Error"}',
    });
    agent.failBackend("throttling");
    expect(await get(agent, "/v1/mcp/quoted?refreshNow=1")).toMatchObject({
      status: 400,
      body: '{"__type":"ThrottlingException", "message":"Rate exceeded"}',
    });
    agent.failBackend(undefined);
    expect(JSON.parse((await get(agent, "/v1/mcp/quoted")).body)).toMatchObject({
      SecretString: 'has "quotes"',
    });
  });
});

describe("cache semantics (clock handed in)", () => {
  function clocked(ttlSeconds = 300) {
    let now = 1_700_000_000_000;
    const backend = new SecretsBackend(parseSecretsDocument(DOCUMENT, "test", now), () => now);
    const cache = new AgentCache(
      backend,
      { ttlMs: ttlSeconds * 1000, size: 1000, ignoreTransientErrors: true },
      () => now,
    );
    const read = (
      secretId = "mcp/api-key",
      extra: Partial<{ versionId: string; versionStage: string; refreshNow: boolean }> = {},
    ) => {
      const result = cache.get({ secretId, refreshNow: false, ...extra });
      if (!result.ok) return { error: result.error.code };
      return { value: result.value.secretString, versionId: result.value.versionId };
    };
    return {
      backend,
      cache,
      read,
      advance: (ms: number) => (now += ms),
      calls: () => ({ ...backend.calls.get("mcp/api-key") }),
    };
  }

  it("serves a fresh entry without calling Secrets Manager, up to and including the TTL", () => {
    const { read, advance, calls } = clocked();
    read();
    advance(300_000);
    read();
    expect(calls()).toEqual({ getSecretValue: 1, describeSecret: 0 });
  });

  it("shows a rotation only after the TTL (DescribeSecret then GetSecretValue), or at once with refreshNow", () => {
    const { backend, read, advance, calls } = clocked();
    expect(read().value).toBe("s3cr3t-new");
    backend.rotate("mcp/api-key", "s3cr3t-rotated");
    expect(read().value).toBe("s3cr3t-new");
    expect(read("mcp/api-key", { refreshNow: true }).value).toBe("s3cr3t-rotated");
    expect(calls()).toEqual({ getSecretValue: 2, describeSecret: 0 });
    backend.rotate("mcp/api-key", "s3cr3t-rotated-2");
    advance(300_001);
    expect(read().value).toBe("s3cr3t-rotated-2");
    expect(calls()).toEqual({ getSecretValue: 3, describeSecret: 1 });
  });

  it("keeps an expired entry whose version still has the stage, resetting its TTL", () => {
    const { read, advance, calls } = clocked();
    read();
    advance(300_001);
    read();
    advance(299_000);
    read();
    expect(calls()).toEqual({ getSecretValue: 1, describeSecret: 1 });
  });

  it("keys by the id as sent: a name and its ARN, an explicit AWSCURRENT and none are separate entries", () => {
    const { read, backend } = clocked();
    read("mcp/api-key");
    read("arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-AbCdEf");
    read("mcp/api-key", { versionStage: "AWSCURRENT" });
    read("mcp/api-key");
    expect(backend.calls.get("mcp/api-key")?.getSecretValue).toBe(3);
  });

  it("with ttl_seconds=0 still caches: every read costs a DescribeSecret, the value only on a version change", () => {
    const { read, advance, calls, backend } = clocked(0);
    read();
    advance(1);
    read();
    advance(1);
    read();
    expect(calls()).toEqual({ getSecretValue: 1, describeSecret: 2 });
    backend.rotate("mcp/api-key", "s3cr3t-zero");
    advance(1);
    expect(read().value).toBe("s3cr3t-zero");
  });

  it("serves the stale value on a transient error (and resets its TTL), but not on throttling", () => {
    const { read, advance, backend } = clocked();
    read();
    advance(300_001);
    backend.failure = "unreachable";
    expect(read().value).toBe("s3cr3t-new");
    backend.failure = "throttling";
    advance(300_001);
    expect(read()).toEqual({ error: "ThrottlingException" });
  });

  it("never serves stale for refreshNow, and never caches an error", () => {
    const { read, backend, calls } = clocked();
    read();
    backend.failure = "timeout";
    expect(read("mcp/api-key", { refreshNow: true })).toEqual({ error: "TimeoutError" });
    backend.failure = undefined;
    expect(read("mcp/nope")).toEqual({ error: "ResourceNotFoundException" });
    expect(read("mcp/nope")).toEqual({ error: "ResourceNotFoundException" });
    expect(backend.calls.get("mcp/nope")?.getSecretValue).toBe(2);
    expect(calls().getSecretValue).toBe(2);
  });

  it("with an expired versionId-only entry checks that the version exists, not its stage", () => {
    const { read, advance, backend, calls } = clocked();
    read("mcp/api-key", { versionId: "22222222-2222-4222-a222-222222222222" });
    backend.rotate("mcp/api-key");
    advance(300_001);
    expect(read("mcp/api-key", { versionId: "22222222-2222-4222-a222-222222222222" }).value).toBe(
      "s3cr3t-new",
    );
    expect(calls()).toEqual({ getSecretValue: 1, describeSecret: 1 });
  });

  it("evicts the least recently written entry beyond cache_size", () => {
    let now = 0;
    const backend = new SecretsBackend(parseSecretsDocument(DOCUMENT, "test", 0), () => now);
    const cache = new AgentCache(
      backend,
      { ttlMs: 300_000, size: 2, ignoreTransientErrors: true },
      () => now,
    );
    for (const secretId of ["mcp/api-key", "mcp/blob", "mcp/quoted"])
      cache.get({ secretId, refreshNow: false });
    now = 1;
    cache.get({ secretId: "mcp/blob", refreshNow: false });
    cache.get({ secretId: "mcp/api-key", refreshNow: false });
    expect(backend.calls.get("mcp/blob")?.getSecretValue).toBe(1);
    expect(backend.calls.get("mcp/api-key")?.getSecretValue).toBe(2);
    expect(cache.size).toBe(2);
  });
});

describe("connections", () => {
  it("answers 429 on connections accepted over max_conn, and lets /ping use two more", async () => {
    const agent = await emulator({ maxConn: 2 });
    const holders = [
      connect(Number(agent.url.port), "127.0.0.1"),
      connect(Number(agent.url.port), "127.0.0.1"),
    ];
    await Promise.all(holders.map((socket) => new Promise((resolve) => socket.once("connect", resolve))));
    await expect
      .poll(() => get(agent, "/secretsmanager/get?secretId=mcp/api-key").then((r) => r.status))
      .toBe(429);
    expect((await get(agent, "/secretsmanager/get?secretId=mcp/api-key")).body).toBe(
      "Connection limit exceeded",
    );
    expect((await raw(agent, "GET", "/ping", [])).status).toBe(200);
    for (const socket of holders) socket.destroy();
    await expect
      .poll(() => get(agent, "/secretsmanager/get?secretId=mcp/api-key").then((r) => r.status))
      .toBe(200);
  });

  it("cuts every connection its lifetime after accept, idle or busy, with no response", async () => {
    const agent = await emulator({ connectionLifetimeMs: 200 });
    const socket = connect(Number(agent.url.port), "127.0.0.1");
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString();
    });
    // A request that arrives after the cut gets nothing back: the connection is simply gone.
    await new Promise((resolve) => socket.once("close", resolve));
    expect(received).toBe("");
    expect(DEFAULT_EMULATOR_SETTINGS.connectionLifetimeMs).toBe(61_000);
  });

  it("can be down (connection refused), slow, and back", async () => {
    const agent = await emulator();
    const port = agent.url.port;
    await agent.stop();
    await expect(fetch(`http://127.0.0.1:${port}/ping`)).rejects.toThrow();
    await agent.start();
    expect(agent.url.port).toBe(port);
    agent.faults.slowMs = 50;
    const started = performance.now();
    expect((await raw(agent, "GET", "/ping", [])).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });
});

describe("token, config and secrets file", () => {
  it("reads the token from the first set variable, file:// trimmed, and fails with none set", async () => {
    const dir = await mkdtemp(join(tmpdir(), "token-"));
    await writeFile(join(dir, "t"), "  from-file\n");
    expect(readAgentToken({ AWS_SESSION_TOKEN: "b", AWS_TOKEN: "a" }).token).toBe("a");
    expect(readAgentToken({ AWS_CONTAINER_AUTHORIZATION_TOKEN: "c" }).token).toBe("c");
    expect(readAgentToken({ AWS_TOKEN: `file://${join(dir, "t")}` })).toEqual({
      token: "from-file",
      source: `AWS_TOKEN (${join(dir, "t")})`,
    });
    // The agent takes the first *set* variable, even an empty one.
    expect(readAgentToken({ AWS_TOKEN: "", AWS_SESSION_TOKEN: "b" }).token).toBe("");
    expect(() => readAgentToken({})).toThrow(AgentTokenError);
    expect(() => readAgentToken({ AWS_TOKEN: `file://${join(dir, "missing")}` })).toThrow(
      /cannot read token file/,
    );
  });

  it("validates config.toml as agent 2.0.0 does: unknown keys fatal, ranges, quoted numbers", () => {
    expect(parseAgentConfig({ ttl_seconds: "0", max_conn: 10, http_port: 0 }).settings).toMatchObject({
      port: 0,
      maxConn: 10,
      cache: { ttlMs: 0 },
    });
    const error = (() => {
      try {
        parseAgentConfig({
          ttl_seconds: 3601,
          cache_size: 0,
          http_port: 80,
          max_conn: 1001,
          bogus: 1,
          credentials_file_path: "/x",
          path_prefix: "v1",
          ssrf_headers: [],
        });
      } catch (e) {
        return e as AgentConfigError;
      }
      return undefined;
    })();
    expect(error?.problems).toHaveLength(8);
    expect(error?.problems.join("\n")).toContain("credentials_file_path is not a key of agent 2.0.0");
    // The config the project ships for its tasks passes, with its 30 s TTL.
    expect(
      readAgentConfig(new URL("../agent/config.toml", import.meta.url).pathname).settings.cache.ttlMs,
    ).toBe(30_000);
  });

  it("reports every problem of a secrets file at once", () => {
    try {
      parseSecretsDocument({
        secrets: {
          "bad name!": "x",
          two: {
            versions: [
              { string: "a", stages: ["AWSCURRENT"] },
              { string: "b", binary: "YQ==", stages: ["AWSCURRENT"] },
            ],
          },
          none: { versions: [{ string: "a", stages: [] }] },
        },
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SecretsFileError);
      expect((error as SecretsFileError).problems).toEqual([
        'secrets["bad name!"]: not a valid secret name (letters, digits and /_+=.@- only)',
        'secrets["two"].versions[1]: needs exactly one of "string" or "binary" (base64)',
        'secrets["two"].versions[1].stages: AWSCURRENT is already on versions[0]',
        'secrets["none"]: no version carries AWSCURRENT',
      ]);
    }
  });
});

describe("the agent-emulator command", () => {
  it("exits 1 without a token, like the agent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emu-"));
    await writeFile(join(dir, "s.yaml"), "secrets:\n  a: b\n");
    const proc = node(
      "bin/mcp-sidecar.js",
      ["agent-emulator", "--secrets", join(dir, "s.yaml"), "--port", "0"],
      {
        AWS_TOKEN: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: undefined,
      },
    );
    expect((await proc.exited).code).toBe(1);
    expect(proc.lines.join("\n")).toContain("no SSRF token");
  });

  it("refuses a bad --connection-lifetime with a message naming it, exit 2", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emu-"));
    await writeFile(join(dir, "s.yaml"), "secrets:\n  a: b\n");
    const args = ["agent-emulator", "--secrets", join(dir, "s.yaml"), "--connection-lifetime", "soon"];
    const proc = node("bin/mcp-sidecar.js", args, { AWS_TOKEN: "t" });
    expect((await proc.exited).code).toBe(2);
    expect(proc.lines.join("\n")).toContain('agent-emulator: --connection-lifetime "soon" is not a duration');
  });

  it("rotate makes a new AWSCURRENT beside the file; the running emulator (ttl 0) logs the reload and serves it next", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emu-"));
    const secrets = join(dir, "secrets.yaml");
    await writeFile(secrets, "secrets:\n  mcp/api-key: s3cr3t-first\n");
    await writeFile(join(dir, "config.toml"), "ttl_seconds = 0\n");
    const proc = startProcess(
      process.execPath,
      [
        "bin/mcp-sidecar.js",
        "agent-emulator",
        "--secrets",
        secrets,
        "--config",
        join(dir, "config.toml"),
        "--port",
        "0",
      ],
      {
        env: { AWS_TOKEN: TOKEN },
      },
    );
    const url = String(jsonLine(await proc.waitForLine((l) => jsonLine(l)?.msg === "listening"))?.url);
    const read = async () => {
      const response = await fetch(new URL("/secretsmanager/get?secretId=mcp/api-key", url), {
        headers: { "X-Aws-Parameters-Secrets-Token": TOKEN },
      });
      return (await response.json()) as { SecretString: string; VersionStages: string[] };
    };
    expect((await read()).SecretString).toBe("s3cr3t-first");
    const rotate = node("bin/mcp-sidecar.js", [
      "agent-emulator",
      "rotate",
      "--secrets",
      secrets,
      "mcp/api-key",
      "--value",
      "s3cr3t-second",
    ]);
    expect((await rotate.exited).code).toBe(0);
    await proc.waitForLine((l) => jsonLine(l)?.msg === "secrets file reloaded");
    expect(await read()).toMatchObject({ SecretString: "s3cr3t-second", VersionStages: ["AWSCURRENT"] });
    const previous = await fetch(
      new URL("/secretsmanager/get?secretId=mcp/api-key&versionStage=AWSPREVIOUS", url),
      { headers: { "X-Vault-Token": TOKEN } },
    );
    expect(((await previous.json()) as { SecretString: string }).SecretString).toBe("s3cr3t-first");
    expect(proc.lines.join("\n")).not.toContain("s3cr3t");
  });
});
