// Session routing, case by case, with two sidecars in-process (two "tasks" on 127.0.0.1, each with
// its own upstream) and the agent emulator: what the client and the upstream each see, tokens that
// are altered, foreign or outside --peer-cidrs, loops, the owner's own key check, the owner's server
// losing a session, key rotation under load, the agent down, stateless traffic, --advertise-url auto.
//
// The upstreams are scripted MCP servers (sessions in a Set), so that every header they receive can
// be asserted; the same flows against the real reference server are test/session-routing.test.ts.
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createNetServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../proxy/config.ts";
import { deriveSessionKey, sealSessionToken } from "../proxy/sessions/session-token.ts";
import { deferred, rawExchange, send } from "./helpers/client.ts";
import { AGENT_TOKEN, startEmulator, stopAllEmulators } from "./helpers/emulator.ts";
import { closeHttp, freePort, listenHttp } from "./helpers/net.ts";
import { startSidecar, stopAllSidecars, type TestSidecar } from "./helpers/sidecar.ts";
import { readBody } from "./helpers/upstream.ts";

const SECRET = randomBytes(24).toString("base64url");
const API_KEY = "an-api-key-for-the-routing-tests";
const JSON_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  await stopAllSidecars();
  await Promise.all(closers.splice(0).map((close) => close()));
  await stopAllEmulators();
});

interface Seen {
  readonly method: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A scripted session-ful MCP server: sessions in a Set, every request recorded. */
async function scriptedServer(name: string) {
  const sessions = new Set<string>();
  const seen: Seen[] = [];
  /** tools/call waits for this (a call in flight for as long as a test needs). */
  let hold: Promise<void> = Promise.resolve();
  /** The held call's answer head goes out at once, its body when the hold ends. */
  let headFirst = false;
  let minted = 0;
  const { server, url } = await listenHttp((req: IncomingMessage, res: ServerResponse) => {
    void readBody(req).then((raw) => {
      const body = raw.toString();
      seen.push({ method: req.method ?? "", headers: req.headers, body });
      const session = req.headers["mcp-session-id"] as string | undefined;
      if (req.method === "GET" && req.url === "/health") return res.end("ok");
      if (req.url === "/nowhere") {
        res.writeHead(404, { "content-type": "text/html" });
        return res.end("<h1>Cannot POST /nowhere</h1>");
      }
      const message = body ? (JSON.parse(body) as { id?: unknown; method?: string; params?: unknown }) : {};
      if (message.method === "initialize") {
        const id = `${name}-upstream-${++minted}`;
        sessions.add(id);
        res.writeHead(200, { "content-type": "application/json", "mcp-session-id": id });
        return res.end(
          JSON.stringify({
            jsonrpc: "2.0",
            id: message.id,
            result: { protocolVersion: "2025-11-25", capabilities: {} },
          }),
        );
      }
      if (session === undefined) {
        // Sessionless (a 2026-07-28 request): answered as it is, no session header.
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ jsonrpc: "2.0", id: message.id ?? null, result: { served: name } }));
      }
      if (!sessions.has(session)) {
        res.writeHead(404, { "content-type": "application/json" });
        return res.end(
          JSON.stringify({
            jsonrpc: "2.0",
            id: message.id ?? null,
            error: { code: -32001, message: "Session not found" },
          }),
        );
      }
      if (req.method === "DELETE") {
        sessions.delete(session);
        return res.writeHead(200).end();
      }
      if (message.method === "notifications/initialized") return res.writeHead(202).end();
      if (message.method === "tools/call") {
        if (headFirst) {
          res.writeHead(200, { "content-type": "application/json" });
          res.flushHeaders();
        }
        void hold.then(() => {
          if (!res.headersSent) res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { content: [] } }));
        });
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "mcp-session-id": session });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { served: name, session } }));
    });
  });
  closers.push(() => closeHttp(server));
  return {
    url,
    sessions,
    seen,
    holdCalls(until: Promise<void>, options: { headFirst?: boolean } = {}) {
      hold = until;
      headFirst = options.headFirst === true;
    },
  };
}

const ROUTING = (cidrs = "127.0.0.0/8", advertise = "http://127.0.0.1") => [
  "--session-routing",
  "on",
  "--session-secret",
  "session-key",
  "--advertise-url",
  advertise,
  "--peer-cidrs",
  cidrs,
  "--ready-probe",
  "tcp",
];

async function twoTasks(
  options: {
    args?: string[];
    argsA?: string[];
    argsB?: string[];
    cidrs?: string;
    emulator?: Record<string, unknown>;
  } = {},
) {
  const emulator = await startEmulator(
    { "session-key": SECRET, "api-key": API_KEY, ...options.emulator },
    {
      cache: { ttlMs: 300, size: 100, ignoreTransientErrors: true },
    },
  );
  const serverA = await scriptedServer("A");
  const serverB = await scriptedServer("B");
  // Two tasks on their own addresses, on one port (as a service's tasks are).
  const port = await freePort();
  const task = (address: string, server: URL, own: string[]) =>
    startSidecar(
      server,
      [
        ...["--secrets-agent", emulator.url.origin, ...ROUTING(options.cidrs, `http://${address}`)],
        ...(options.args ?? []),
        ...own,
      ],
      { agentToken: () => AGENT_TOKEN },
      { host: address, port },
    );
  const a = await task("127.0.0.2", serverA.url, options.argsA ?? []);
  const b = await task("127.0.0.3", serverB.url, options.argsB ?? []);
  await Promise.all([a, b].map((task) => expect.poll(() => ready(task), { timeout: 5000 }).toBe(200)));
  return { emulator, a, b, serverA, serverB, port };
}

const ready = async (task: TestSidecar) => (await send(new URL("/ready", task.url))).status;

async function initialize(task: TestSidecar, headers: Record<string, string> = {}) {
  const response = await send(new URL("/mcp", task.url), {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "edges", version: "1" },
      },
    }),
  });
  expect(response.status).toBe(200);
  return String(response.headers["mcp-session-id"]);
}

function call(task: TestSidecar, token: string, id: number, headers: Record<string, string> = {}) {
  return send(new URL("/mcp", task.url), {
    method: "POST",
    headers: { ...JSON_HEADERS, "mcp-session-id": token, "mcp-protocol-version": "2025-11-25", ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/list" }),
  });
}

/** A tools/call the scripted server holds (holdCalls), with the session's token. */
function callTool(task: TestSidecar, token: string, id: number) {
  return send(new URL("/mcp", task.url), {
    method: "POST",
    headers: { ...JSON_HEADERS, "mcp-session-id": token, "mcp-protocol-version": "2025-11-25" },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "x", arguments: {} } }),
  });
}

async function metric(task: TestSidecar, series: string): Promise<number> {
  const text = (await send(new URL("/metrics", task.url))).text;
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

describe("session routing: what each side sees", () => {
  it("the client gets a token, never the server's id; the owner's server gets its own id, never a token; a request to another task reaches the owner", async () => {
    const { a, b, serverA, serverB } = await twoTasks();
    const token = await initialize(a);
    expect(token).not.toContain("A-upstream");
    expect(token.length).toBeGreaterThan(100);
    const viaB = await call(b, token, 2);
    expect(viaB.status).toBe(200);
    expect(viaB.json()).toMatchObject({ result: { served: "A", session: "A-upstream-1" } });
    // The response's Mcp-Session-Id is the token again, not the server's.
    expect(viaB.headers["mcp-session-id"]).toBe(token);
    const last = serverA.seen.at(-1) as Seen;
    expect(last.headers["mcp-session-id"]).toBe("A-upstream-1");
    expect(last.headers["mcp-sidecar-forwarded-by"]).toBeUndefined();
    expect(JSON.stringify(serverA.seen)).not.toContain(token);
    expect(serverB.seen).toEqual([]);
    expect(await metric(b, 'mcp_sidecar_session_requests_total{route="forwarded",reason="owner"}')).toBe(1);
    expect(await metric(a, 'mcp_sidecar_session_requests_total{route="local",reason="owned"}')).toBe(1);
    expect(await metric(a, "mcp_sidecar_sessions_owned")).toBe(1);
    expect(await metric(b, "mcp_sidecar_session_forward_seconds_count")).toBe(1);
  });

  it("DELETE through another task ends the session on its owner; a GET stream's Last-Event-ID travels on", async () => {
    const { a, b, serverA } = await twoTasks();
    const token = await initialize(a);
    const get = await send(new URL("/mcp", b.url), {
      headers: { accept: "text/event-stream", "mcp-session-id": token, "last-event-id": "ev-7" },
    });
    expect(get.status).toBe(200);
    expect(serverA.seen.at(-1)?.headers["last-event-id"]).toBe("ev-7");
    const deleted = await send(new URL("/mcp", b.url), {
      method: "DELETE",
      headers: { "mcp-session-id": token },
    });
    expect(deleted.status).toBe(200);
    expect(serverA.sessions.size).toBe(0);
    expect(await metric(a, "mcp_sidecar_sessions_owned")).toBe(0);
  });

  it("2026-07-28 stateless requests pass untouched: no token, no forward", async () => {
    const { a, serverA } = await twoTasks();
    const response = await send(new URL("/mcp", a.url), {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list" }),
    });
    expect(response.json()).toMatchObject({ result: { served: "A" } });
    expect(response.headers["mcp-session-id"]).toBeUndefined();
    expect(serverA.seen.at(-1)?.headers["mcp-session-id"]).toBeUndefined();
  });
});

describe("session routing: tokens that are not right", () => {
  it("altered, junk or an upstream's raw id: 404 with the request's JSON-RPC id (the client re-initializes), counted, never a 500", async () => {
    const { a, serverA } = await twoTasks();
    const token = await initialize(a);
    const bytes = Buffer.from(token, "base64url");
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x40;
    for (const [bad, reason] of [
      [bytes.toString("base64url"), "tampered"],
      ["A-upstream-1", "malformed"],
      ["x".repeat(5000), "malformed"],
    ] as const) {
      const response = await call(a, bad, 9);
      expect(response.status).toBe(404);
      expect(response.json()).toMatchObject({
        id: 9,
        error: { data: { code: "MCP_SIDECAR_SESSION_NOT_FOUND" } },
      });
      expect(
        await metric(a, `mcp_sidecar_session_requests_total{route="refused",reason="${reason}"}`),
      ).toBeGreaterThan(0);
    }
    expect(serverA.seen.filter((s) => s.body.includes('"tools/list"'))).toEqual([]);
  });

  it("a token sealed with the right key but naming an owner outside --peer-cidrs, or on another port: 404, and that address is never contacted", async () => {
    const { b, port } = await twoTasks({ cidrs: "127.0.0.0/30" });
    const connections: string[] = [];
    const traps = await Promise.all(
      [
        ["127.0.0.9", port],
        ["127.0.0.2", 0],
      ].map(async ([host, trapPort]) => {
        const trap = createNetServer((socket) => {
          connections.push(String(host));
          socket.destroy();
        });
        await new Promise<void>((resolve) => trap.listen(Number(trapPort), String(host), resolve));
        closers.push(() => new Promise((resolve) => trap.close(() => resolve())));
        return `http://${host}:${(trap.address() as { port: number }).port}`;
      }),
    );
    for (const [i, owner] of traps.entries()) {
      const forged = sealSessionToken(deriveSessionKey(SECRET), {
        owner,
        instance: "elsewhere",
        upstreamSession: "x",
        initialize: undefined,
        issuedAt: Date.now(),
      });
      const response = await call(b, forged, 4);
      expect(response.status).toBe(404);
      expect(
        await metric(b, 'mcp_sidecar_session_requests_total{route="refused",reason="outside_peer_cidrs"}'),
      ).toBe(i + 1);
    }
    expect(connections).toEqual([]);
  });
});

describe("session routing: loops, keys and the owner's own checks", () => {
  it("a forwarded request is never forwarded again: a task that does not own the session answers 421 moved", async () => {
    const { a, b, serverA } = await twoTasks();
    const token = await initialize(a);
    const before = serverA.seen.length;
    const response = await call(b, token, 5, { "mcp-sidecar-forwarded-by": "some-peer" });
    expect(response.status).toBe(421);
    expect(response.headers["mcp-sidecar-session"]).toBe("moved");
    expect(response.json()).toMatchObject({ id: 5, error: { data: { code: "MCP_SIDECAR_SESSION_MOVED" } } });
    expect(serverA.seen.length).toBe(before);
  });

  it("the owner checks the client's key again: the hop header lets nothing past --auth-secret, and the key travels on", async () => {
    const { a, b } = await twoTasks({ args: ["--auth-secret", "api-key"] });
    const auth = { authorization: `Bearer ${API_KEY}` };
    const token = await initialize(a, auth);
    expect((await call(b, token, 6, auth)).status).toBe(200);
    expect((await call(a, token, 7, { "mcp-sidecar-forwarded-by": "x" })).status).toBe(401);
    expect((await call(b, token, 8)).status).toBe(401);
  });
});

describe("session routing: continuity when the owner is gone", () => {
  it("the owner's server lost the session (404): the owner re-creates it from the sealed initialize and the call succeeds, with a new token", async () => {
    const { a, serverA } = await twoTasks();
    const token = await initialize(a);
    serverA.sessions.clear();
    // The server checks its clients itself (no --auth-secret): the replay carries the client's key.
    const response = await call(a, token, 10, { authorization: "Bearer the-clients-own-key" });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ result: { session: "A-upstream-2" } });
    const fresh = String(response.headers["mcp-session-id"]);
    expect(fresh).not.toBe(token);
    const replayed = serverA.seen.filter((s) => s.body.includes('"initialize"')).at(-1) as Seen;
    expect(JSON.parse(replayed.body).params.clientInfo).toEqual({ name: "edges", version: "1" });
    expect(replayed.headers.authorization).toBe("Bearer the-clients-own-key");
    expect(
      serverA.seen.some(
        (s) => s.body.includes("notifications/initialized") && s.headers["mcp-session-id"] === "A-upstream-2",
      ),
    ).toBe(true);
    // The old token keeps working here (clients that do not adopt the new id), on the same new session.
    expect((await call(a, token, 11)).json()).toMatchObject({ result: { session: "A-upstream-2" } });
    expect((await call(a, fresh, 12)).json()).toMatchObject({ result: { session: "A-upstream-2" } });
    expect(
      await metric(a, 'mcp_sidecar_session_requests_total{route="replayed",reason="owner_lost_session"}'),
    ).toBe(1);
  });

  it("the owner stopped: the next task re-creates the session once for a burst of calls; a DELETE of it is 204", async () => {
    const { a, b, serverB } = await twoTasks();
    const token = await initialize(a);
    await a.sidecar.close();
    const answers = await Promise.all([20, 21, 22].map((id) => call(b, token, id)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answers.map((r) => (r.json() as { result: { session: string } }).result.session)).toEqual([
      "B-upstream-1",
      "B-upstream-1",
      "B-upstream-1",
    ]);
    expect(serverB.seen.filter((s) => s.body.includes('"initialize"'))).toHaveLength(1);
    expect(
      await metric(b, 'mcp_sidecar_session_requests_total{route="replayed",reason="owner_unreachable"}'),
    ).toBe(3);
    const fresh = String(answers[0]?.headers["mcp-session-id"]);
    const deleted = await send(new URL("/mcp", b.url), {
      method: "DELETE",
      headers: { "mcp-session-id": fresh },
    });
    expect(deleted.status).toBe(200);
    expect(serverB.sessions.size).toBe(0);
  });

  it("a draining owner answers a forwarded request 421 moved, and the forwarding task continues the session", async () => {
    const { a, b, serverA } = await twoTasks();
    const token = await initialize(a);
    // A call in flight keeps the owner draining until the test lets it finish.
    const release = deferred();
    serverA.holdCalls(release.promise);
    const inFlight = callTool(a, token, 29);
    await expect.poll(() => serverA.seen.filter((s) => s.body.includes("tools/call")).length).toBe(1);
    const stopped = a.sidecar.close();
    await expect.poll(() => a.sidecar.draining).toBe(true);
    const response = await call(b, token, 30);
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ result: { served: "B" } });
    const text = (await send(new URL("/metrics", b.url))).text;
    expect(text.split("\n").filter((l) => l.startsWith("mcp_sidecar_session_requests_total{"))).toContain(
      'mcp_sidecar_session_requests_total{route="replayed",reason="owner_moved"} 1',
    );
    release.resolve();
    expect((await inFlight).status).toBe(200);
    expect((await stopped).exitCode).toBe(0);
  });

  it("a body larger than 64 KiB (chunked or not) is read whole before the forward, and served again in full when the owner is gone", async () => {
    const { a, b, serverB } = await twoTasks();
    const token = await initialize(a);
    await a.sidecar.close();
    const big = JSON.stringify({
      jsonrpc: "2.0",
      id: 70,
      method: "tools/list",
      params: { pad: "x".repeat(200_000) },
    });
    const response = await send(new URL("/mcp", b.url), {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-session-id": token, "mcp-protocol-version": "2025-11-25" },
      body: big,
    });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ id: 70, result: { served: "B" } });
    expect(serverB.seen.find((seen) => seen.body.includes('"id":70'))?.body).toBe(big);
  });

  it("a forwarded body over --max-body-size gets 413 at once, closing the connection, before any of it is read whole", async () => {
    const { a, b } = await twoTasks({ args: ["--max-body-size", "64KiB"] });
    const token = await initialize(a);
    const response = await send(new URL("/mcp", b.url), {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-session-id": token, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 75,
        method: "tools/list",
        params: { pad: "x".repeat(100_000) },
      }),
    });
    expect(response.status).toBe(413);
    expect(response.headers.connection).toBe("close");
    // Too large to be a message whose id the sidecar could quote: a plain JSON error.
    expect(response.json()).toMatchObject({ error: { code: "MCP_SIDECAR_BODY_TOO_LARGE", status: 413 } });
    // A declared 10 GB of which a few bytes ever come: answered at once, not after the rest.
    const raw = await rawExchange(
      b.url,
      `POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMcp-Session-Id: ${token}\r\nContent-Length: 10000000000\r\n\r\n{"jsonrpc"`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 413 /);
  });

  it("a call the draining owner cuts at its drain timeout is answered, not reset, and not run a second time elsewhere: its client gets the error", async () => {
    const { a, b, serverA, serverB } = await twoTasks({ argsA: ["--drain-timeout", "1s"] });
    const token = await initialize(a);
    serverA.holdCalls(new Promise(() => {}));
    const viaB = callTool(b, token, 80);
    await expect.poll(() => serverA.seen.filter((seen) => seen.body.includes("tools/call")).length).toBe(1);
    expect((await a.sidecar.close()).cut).toBe(1);
    const response = await viaB;
    expect(response.status).toBe(503);
    expect(response.json()).toMatchObject({ id: 80, error: { data: { code: "MCP_SIDECAR_CALL_CUT" } } });
    expect(serverB.seen.filter((seen) => seen.body.includes("tools/call"))).toEqual([]);
  });

  it("a call cut at the owner's drain timeout after its answer began is cut for its client too, never run again: the owner sends a forwarded answer's head at once", async () => {
    const { a, b, serverA, serverB } = await twoTasks({ argsA: ["--drain-timeout", "1s"] });
    const token = await initialize(a);
    serverA.holdCalls(new Promise(() => {}), { headFirst: true });
    const viaB = callTool(b, token, 85);
    const settled = viaB.then(
      (response) => `answered ${response.status}`,
      () => "cut",
    );
    await expect.poll(() => serverA.seen.filter((seen) => seen.body.includes("tools/call")).length).toBe(1);
    expect((await a.sidecar.close()).cut).toBe(1);
    expect(await settled).toBe("cut");
    expect(serverB.seen.filter((seen) => seen.body.includes("tools/call"))).toEqual([]);
  });

  it("a lost session whose request cannot be sent again (a body streamed on, not kept) gets the server's own 404", async () => {
    const { a, serverA } = await twoTasks();
    const token = await initialize(a);
    serverA.sessions.clear();
    const response = await send(new URL("/mcp", a.url), {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-session-id": token, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 95,
        method: "tools/list",
        params: { pad: "x".repeat(100_000) },
      }),
    });
    expect(response.status).toBe(404);
    expect(response.json()).toMatchObject({ error: { message: "Session not found" } });
    expect(serverA.seen.filter((seen) => seen.body.includes('"initialize"'))).toHaveLength(1);
  });

  it("a 404 that is not about the session (an HTML page for a wrong path) is the answer: nothing is re-created", async () => {
    const { a, serverA } = await twoTasks();
    const token = await initialize(a);
    const response = await send(new URL("/nowhere", a.url), {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-session-id": token, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 90, method: "tools/list" }),
    });
    expect(response.status).toBe(404);
    expect(response.text).toContain("Cannot POST /nowhere");
    expect(serverA.seen.filter((seen) => seen.body.includes('"initialize"'))).toHaveLength(1);
  });

  it("a new task at an old task's address is not taken for the owner: sent to it, the session is continued there; forwarded to it, it answers 421 and the forwarder continues it", async () => {
    const { a, b, serverA, serverB } = await twoTasks();
    // Tokens sealed by earlier sidecars at B's address (other instance ids), as after a deploy that
    // gave the new task the old one's IP.
    const earlier = (instance: string, upstreamSession: string) =>
      sealSessionToken(deriveSessionKey(SECRET), {
        owner: String(b.sidecar.advertisedUrl),
        instance,
        upstreamSession,
        initialize: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: instance, version: "1" },
        },
        issuedAt: Date.now() - 60_000,
      });
    const direct = await call(b, earlier("an-earlier-instance", "gone-upstream-id"), 100);
    expect(direct.json()).toMatchObject({ result: { served: "B" } });
    expect(
      await metric(b, 'mcp_sidecar_session_requests_total{route="replayed",reason="owner_replaced"}'),
    ).toBe(1);
    const other = earlier("yet-another-earlier-instance", "gone-too");
    const viaA = await call(a, other, 101);
    expect(viaA.json()).toMatchObject({ result: { served: "A" } });
    expect(await metric(b, 'mcp_sidecar_session_requests_total{route="refused",reason="moved"}')).toBe(1);
    expect(await metric(a, 'mcp_sidecar_session_requests_total{route="replayed",reason="owner_moved"}')).toBe(
      1,
    );
    expect(serverB.seen.some((seen) => seen.headers["mcp-session-id"] === "gone-too")).toBe(false);
    expect(serverA.seen.some((seen) => seen.headers["mcp-session-id"] === "gone-upstream-id")).toBe(false);
  });

  it("--session-continuity off: a session whose owner is gone answers 404, as servers do", async () => {
    const { a, b } = await twoTasks({ args: ["--session-continuity", "off"] });
    const token = await initialize(a);
    await a.sidecar.close();
    const response = await call(b, token, 40);
    expect(response.status).toBe(404);
    expect(
      await metric(b, 'mcp_sidecar_session_requests_total{route="refused",reason="continuity_off"}'),
    ).toBe(1);
  });
});

describe("session routing: the key", () => {
  it("rotated under load: a token sealed with a key one task has not polled yet is opened after an on-demand refresh; 0 failed calls", async () => {
    // A polls every 200 ms, B every hour: B learns the new key only on demand.
    const { emulator, a, b } = await twoTasks({
      argsA: ["--refresh-interval", "200ms"],
      argsB: ["--refresh-interval", "1h"],
    });
    const tokens = await Promise.all([1, 2, 3, 4].map(() => initialize(a)));
    let failed = 0;
    let id = 100;
    const round = async () => {
      const answers = await Promise.all(tokens.map((token, i) => call(i % 2 ? a : b, token, id++)));
      failed += answers.filter((r) => r.status !== 200).length;
      // Adopt a re-sealed token, as the SDK does.
      answers.forEach((r, i) => {
        if (typeof r.headers["mcp-session-id"] === "string") tokens[i] = r.headers["mcp-session-id"];
      });
    };
    for (let i = 0; i < 5; i++) await round();
    emulator.rotate("session-key", randomBytes(24).toString("base64url"));
    // Until A has polled the new key and sealed with it, and B has opened such a token on demand.
    await expect
      .poll(
        async () => {
          await round();
          return metric(b, 'mcp_sidecar_secret_on_demand_refreshes_total{secret="session-key"}');
        },
        { timeout: 5000 },
      )
      .toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) await round();
    expect(await metric(b, 'mcp_sidecar_session_requests_total{route="refused",reason="unknown_key"}')).toBe(
      0,
    );
    expect(failed).toBe(0);
    expect(emulator.requests.get("refreshNow") ?? 0).toBeLessThan(10);
  });

  it("the agent down: routing goes on with the keys it holds", async () => {
    const { emulator, a, b } = await twoTasks();
    const token = await initialize(a);
    await emulator.stop();
    for (let i = 0; i < 5; i++) expect((await call(b, token, 50 + i)).status).toBe(200);
    expect((await call(b, await initialize(b), 60)).status).toBe(200);
  });
});

describe("without session routing", () => {
  it("a client's own Mcp-Sidecar-Forwarded-By changes nothing: a call cut at the drain is reset, as any", async () => {
    const server = await scriptedServer("plain");
    server.holdCalls(new Promise(() => {}));
    const started = await startSidecar(server.url, ["--ready-probe", "tcp"]);
    const { sidecar, url } = started;
    const session = await initialize(started);
    const call = send(new URL("/mcp", url), {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-session-id": session, "mcp-sidecar-forwarded-by": "x" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } }),
    });
    const reset = expect(call).rejects.toThrow();
    await expect.poll(() => sidecar.inFlight).toBe(1);
    expect((await sidecar.destroy()).cut).toBe(1);
    await reset;
  });
});

describe("--advertise-url auto and the routing options", () => {
  async function metadataServer(document: unknown, status = 200) {
    const { server, url } = await listenHttp((_req, res) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(document));
    });
    closers.push(() => closeHttp(server));
    return new URL("/v4/abc-123", url).href;
  }

  async function autoSidecar(metadataUri: string, cidrs = "127.0.0.0/8") {
    const emulator = await startEmulator({ "session-key": SECRET });
    const server = await scriptedServer("auto");
    const parsed = parseConfig(
      [
        ...["--upstream", server.url.origin, "--port", "0", "--host", "127.0.0.1"],
        ...["--secrets-agent", emulator.url.origin, ...ROUTING(cidrs, "auto")],
      ],
      { ECS_CONTAINER_METADATA_URI_V4: metadataUri },
    );
    if (parsed.kind !== "config") throw new Error(JSON.stringify(parsed));
    return parsed.config;
  }

  it("reads the task's address from the ECS task metadata endpoint v4, and advertises it with the bound port", async () => {
    const uri = await metadataServer({
      Name: "sidecar",
      Networks: [{ NetworkMode: "awsvpc", IPv4Addresses: ["127.0.0.1"] }],
    });
    const config = await autoSidecar(uri);
    const { Sidecar } = await import("../proxy/sidecar.ts");
    const sidecar = new Sidecar(config, { agentToken: () => AGENT_TOKEN, processMetrics: false });
    const url = await sidecar.listen();
    closers.push(async () => void (await sidecar.destroy()));
    expect(sidecar.advertisedUrl).toBe(`http://127.0.0.1:${url.port}`);
  });

  it("fails to start, naming why, when the metadata has no address or it is outside --peer-cidrs", async () => {
    const { Sidecar } = await import("../proxy/sidecar.ts");
    for (const [document, cidrs, message] of [
      [{ Networks: [] }, "127.0.0.0/8", /no Networks\[\]\.IPv4Addresses/],
      [{ Networks: [{ IPv4Addresses: ["10.0.0.5"] }] }, "127.0.0.0/8", /outside --peer-cidrs/],
    ] as const) {
      const config = await autoSidecar(await metadataServer(document), cidrs);
      const sidecar = new Sidecar(config, { agentToken: () => AGENT_TOKEN, processMetrics: false });
      await expect(sidecar.listen()).rejects.toThrow(message);
      await sidecar.destroy();
    }
  });

  it("names each missing or misplaced routing option", () => {
    const errors = (argv: string[], env: Record<string, string> = {}) => {
      const parsed = parseConfig(["--upstream", "http://127.0.0.1:3000", ...argv], env);
      return parsed.kind === "errors" ? parsed.errors : [];
    };
    expect(errors(["--session-routing", "on"])).toEqual([
      "--session-routing needs --session-secret SECRET_ID[#key]: the key every task seals tokens with",
      "--session-routing needs --advertise-url (a URL other tasks reach this sidecar at, or auto on ECS)",
      "--session-routing needs --peer-cidrs: the addresses other tasks may have (the VPC's CIDR)",
    ]);
    expect(errors(["--peer-cidrs", "10.0.0.0/16"])).toEqual([
      "--peer-cidrs is for session routing: set --session-routing on too",
    ]);
    expect(errors([...ROUTING(), "--advertise-url", "auto"]).join()).toMatch(/given more than once/);
    expect(
      errors([
        "--session-routing",
        "on",
        "--session-secret",
        "k",
        "--advertise-url",
        "auto",
        "--peer-cidrs",
        "10.0.0.0/16",
      ]),
    ).toEqual([
      "--advertise-url auto reads ECS_CONTAINER_METADATA_URI_V4, which is not set (ECS sets it on Fargate); give a URL instead",
    ]);
    expect(errors(["--peer-cidrs", "10.0.0.0/40", "--session-routing", "on"]).join()).toMatch(
      /prefix length must be 0-32/,
    );
    expect(errors(["--advertise-url", "http://task.internal"]).join()).toMatch(/must be an IP address/);
  });
});
