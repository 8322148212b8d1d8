// The pure parts of session routing: the sealed token, CIDR blocks and the peer guard, the route
// plan, the re-created sessions' map, the task metadata reading.
import { describe, expect, it } from "vitest";
import { parseAdvertiseUrl } from "../proxy/config/routing-options.ts";
import { addressFromMetadata, advertisedUrl } from "../proxy/sessions/advertise.ts";
import { parseCidr } from "../proxy/sessions/cidr.ts";
import { PeerGuard } from "../proxy/sessions/peers.ts";
import {
  deriveSessionKey,
  initializeParamsOf,
  MAX_SEALED_PARAMS_BYTES,
  MAX_TOKEN_CHARS,
  openSessionToken,
  type SessionClaims,
  sealSessionToken,
} from "../proxy/sessions/session-token.ts";
import { ReplayedSessions } from "../proxy/upstream/routing/replayed-sessions.ts";
import { goneReason, planRoute } from "../proxy/upstream/routing/route-plan.ts";

const KEY = deriveSessionKey("a session secret of enough length");
const OTHER = deriveSessionKey("another session secret entirely");
const CLAIMS: SessionClaims = {
  owner: "http://10.0.1.23:8080",
  instance: "instance-a",
  upstreamSession: "5f0c7a9e-upstream-id",
  initialize: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "c", version: "1" } },
  issuedAt: 1_764_633_600_000,
};

describe("session tokens (AES-256-GCM)", () => {
  it("round-trips the claims, and names the key that sealed it", () => {
    const token = sealSessionToken(KEY, CLAIMS);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    const opened = openSessionToken([OTHER, KEY], token);
    expect(opened).toEqual({ ok: true, claims: CLAIMS, key: KEY });
  });

  it("never shows what it holds: the upstream id, the owner and the client's params are not readable", () => {
    const token = sealSessionToken(KEY, CLAIMS);
    const bytes = Buffer.from(token, "base64url").toString("latin1");
    for (const secret of ["5f0c7a9e", "10.0.1.23", "clientInfo", "instance-a"])
      expect(bytes).not.toContain(secret);
    // A fresh nonce per token: the same claims never give the same token.
    expect(sealSessionToken(KEY, CLAIMS)).not.toBe(token);
  });

  it("tells a key it does not hold (worth a refresh) from a forged or altered token (not)", () => {
    const token = sealSessionToken(KEY, CLAIMS);
    expect(openSessionToken([OTHER], token)).toEqual({
      ok: false,
      reason: "unknown_key",
      keyId: KEY.id.toString("hex"),
    });
    const bytes = Buffer.from(token, "base64url");
    for (const at of [6, 20, bytes.length - 20, bytes.length - 1]) {
      const altered = Buffer.from(bytes);
      altered[at] = (altered[at] as number) ^ 1;
      expect(openSessionToken([KEY], altered.toString("base64url"))).toEqual({
        ok: false,
        reason: "tampered",
      });
    }
    // The version byte and key id are authenticated too: another id is another (unknown) key.
    const otherId = Buffer.from(bytes);
    otherId[1] = (otherId[1] as number) ^ 1;
    expect(openSessionToken([KEY], otherId.toString("base64url")).ok).toBe(false);
  });

  it("takes an upstream's raw id, junk, or an oversized header for malformed: never a throw", () => {
    for (const junk of [
      "",
      "abc",
      "5f0c7a9e-0e1b-4f4e-9a57-1c6b2f1e3d2a",
      "x".repeat(9000),
      "!!!!!!!!!!!!",
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ])
      expect(openSessionToken([KEY], junk)).toEqual({ ok: false, reason: "malformed" });
  });

  it("derives one key per secret value (every task derives the same), 32 bytes", () => {
    expect(deriveSessionKey("a session secret of enough length").key.equals(KEY.key)).toBe(true);
    expect(KEY.key.length).toBe(32);
    expect(OTHER.id.equals(KEY.id)).toBe(false);
  });

  it("seals a client's initialize params, unless they are too large to carry in a header", () => {
    const body = (params: unknown) =>
      Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params }));
    expect(initializeParamsOf(body({ a: 1 }))).toEqual({ a: 1 });
    expect(initializeParamsOf(body({ a: "x".repeat(MAX_SEALED_PARAMS_BYTES) }))).toBeUndefined();
    expect(initializeParamsOf(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/list"}'))).toBeUndefined();
    expect(initializeParamsOf(Buffer.from("not json"))).toBeUndefined();
    expect(initializeParamsOf(undefined)).toBeUndefined();
  });
});

describe("the token minter", () => {
  it("seals new sessions naming this task; a token that would be too long goes without the initialize", async () => {
    const { TokenMinter } = await import("../proxy/upstream/routing/token-minter.ts");
    const { RoutingMetrics } = await import("../proxy/telemetry/routing-metrics.ts");
    const { Registry } = await import("../proxy/deps.ts");
    const metrics = new RoutingMetrics(new Registry());
    const minter = new TokenMinter(
      () => [KEY],
      metrics,
      () => ({ url: "http://10.0.1.5:8080", instance: "me" }),
    );
    const params = {
      clientInfo: { name: "c", version: "1" },
      pad: "p".repeat(MAX_SEALED_PARAMS_BYTES - 100),
    };
    const normal = minter.mint("short-id", params);
    expect(openSessionToken([KEY], normal.token)).toMatchObject({
      ok: true,
      claims: { owner: "http://10.0.1.5:8080", initialize: params },
    });
    const long = minter.mint("j".repeat(3000), params);
    expect(long.token.length).toBeLessThanOrEqual(MAX_TOKEN_CHARS);
    expect(long.claims.initialize).toBeUndefined();
    expect(openSessionToken([KEY], long.token)).toMatchObject({
      ok: true,
      claims: { upstreamSession: "j".repeat(3000) },
    });
    expect((await metrics.sessionsOwned.get()).values[0]?.value).toBe(2);
  });
});

describe("peers: --peer-cidrs and --advertise-url", () => {
  it("parses CIDR blocks and bare addresses, and names what is wrong", () => {
    expect(parseCidr("10.0.0.0/16")).toEqual({
      address: "10.0.0.0",
      prefix: 16,
      family: "ipv4",
      label: "10.0.0.0/16",
    });
    expect(parseCidr("127.0.0.2")).toMatchObject({ prefix: 32 });
    expect(parseCidr("fd00::/8")).toMatchObject({ family: "ipv6", prefix: 8 });
    expect(parseCidr("10.0.0.0/33")).toBe('"10.0.0.0/33": the prefix length must be 0-32');
    expect(parseCidr("vpc.internal/16")).toMatch(/not an IP address or CIDR block/);
    expect(parseCidr("10.0.0.256/8")).toMatch(/not an IP address/);
  });

  it("forwards only to http:// IP addresses inside the blocks", () => {
    const guard = new PeerGuard([parseCidr("10.0.0.0/16") as never, parseCidr("fd00::/8") as never]);
    expect(guard.originOf("http://10.0.1.23:8080")).toBe("http://10.0.1.23:8080");
    expect(guard.originOf("http://[fd00::5]:8080")).toBe("http://[fd00::5]:8080");
    expect(guard.originOf("http://10.1.0.1:8080")).toBeUndefined();
    expect(guard.originOf("http://169.254.169.254")).toBeUndefined();
    expect(guard.originOf("http://metadata.internal:80")).toBeUndefined();
    expect(guard.originOf("https://10.0.1.23")).toBeUndefined();
    expect(guard.originOf("not a url")).toBeUndefined();
  });

  it("advertises an IP origin, with the bound port when the flag has none", () => {
    expect(parseAdvertiseUrl("auto")).toBe("auto");
    expect(advertisedUrl(parseAdvertiseUrl("http://10.0.1.23") as URL, 8080)).toBe("http://10.0.1.23:8080");
    expect(advertisedUrl(parseAdvertiseUrl("http://10.0.1.23:9000") as URL, 8080)).toBe(
      "http://10.0.1.23:9000",
    );
    expect(() => parseAdvertiseUrl("http://task.local:8080")).toThrow(/must be an IP address/);
    expect(() => parseAdvertiseUrl("https://10.0.1.23")).toThrow(/over http:/);
    expect(() => parseAdvertiseUrl("http://10.0.1.23/mcp")).toThrow(/origin only/);
  });

  it("reads the task's address from a Fargate container metadata v4 document", () => {
    const document = {
      DockerId: "cd189a933e5849daa93386466019ab50-2495160603",
      Name: "sidecar",
      Networks: [{ NetworkMode: "awsvpc", IPv4Addresses: ["10.0.2.106"], AttachmentIndex: 0 }],
    };
    expect(addressFromMetadata(document)).toBe("10.0.2.106");
    expect(addressFromMetadata({ Networks: [] })).toBeUndefined();
    expect(addressFromMetadata({})).toBeUndefined();
    expect(addressFromMetadata(null)).toBeUndefined();
  });
});

describe("the route plan", () => {
  const self = { url: "http://10.0.1.5:8080", instance: "me" };
  const guard = new PeerGuard([parseCidr("10.0.0.0/16") as never]);
  const opened = (claims: Partial<SessionClaims>) => ({
    ok: true as const,
    claims: { ...CLAIMS, ...claims },
    key: KEY,
  });
  const plan = (input: Partial<Parameters<typeof planRoute>[0]>) =>
    planRoute({ token: undefined, forwarded: false, self, guard, continuity: "replay", ...input });

  it("serves sessions it owns, forwards others' to their owner, and new requests here", () => {
    expect(plan({})).toEqual({ kind: "new" });
    expect(plan({ token: opened({ instance: "me" }) }).kind).toBe("local");
    expect(plan({ token: opened({}) })).toMatchObject({ kind: "peer", origin: "http://10.0.1.23:8080" });
  });

  it("never forwards a forwarded request again: the peer continues it", () => {
    expect(plan({ token: opened({}), forwarded: true })).toEqual({ kind: "moved" });
    expect(plan({ token: opened({ instance: "me" }), forwarded: true }).kind).toBe("local");
  });

  it("continues a session whose token names this address but an earlier instance", () => {
    expect(plan({ token: opened({ owner: self.url, instance: "before-me" }) })).toMatchObject({
      kind: "replay",
      reason: "owner_replaced",
    });
    expect(plan({ token: opened({ owner: self.url, instance: "x" }), continuity: "off" })).toEqual({
      kind: "not_found",
      reason: "continuity_off",
    });
    expect(plan({ token: opened({ owner: self.url, instance: "x", initialize: undefined }) })).toEqual({
      kind: "not_found",
      reason: "not_replayable",
    });
  });

  it("refuses tokens it cannot read, and owners outside --peer-cidrs", () => {
    expect(plan({ token: { ok: false, reason: "tampered" } })).toEqual({
      kind: "not_found",
      reason: "tampered",
    });
    expect(plan({ token: opened({ owner: "http://192.168.1.1:8080" }) })).toEqual({
      kind: "not_found",
      reason: "outside_peer_cidrs",
    });
  });
});

describe("when a forward means the owner is gone", () => {
  it("no connection, a connection lost before any answer, 421 moved, or the owner's JSON 404: continue here; anything else is the answer", () => {
    const answer = (status: number, headers: string[] = []) => ({ status, headers });
    const json = ["content-type", "application/json"];
    expect(goneReason("unreachable", "POST")).toBe("owner_unreachable");
    expect(goneReason("lost", "GET")).toBe("owner_connection_lost");
    expect(goneReason("lost", "POST")).toBe("owner_connection_lost");
    expect(goneReason(answer(421, ["Mcp-Sidecar-Session", "moved"]), "POST")).toBe("owner_moved");
    expect(goneReason(answer(404, json), "POST")).toBe("owner_lost_session");
    // Older SDK releases answer an unknown session with no Content-Type at all.
    expect(goneReason(answer(404), "POST")).toBe("owner_lost_session");
    // A DELETE's 404 is its answer; an HTML 404 (a wrong path) is not about the session; a 421 from
    // anything but a sidecar is relayed; so is a 503.
    expect(goneReason(answer(404, json), "DELETE")).toBeUndefined();
    expect(goneReason(answer(404, ["Content-Type", "text/html"]), "POST")).toBeUndefined();
    expect(goneReason(answer(421), "POST")).toBeUndefined();
    expect(goneReason(answer(503), "POST")).toBeUndefined();
    expect(goneReason(answer(200, ["mcp-sidecar-session", "moved"]), "GET")).toBeUndefined();
  });
});

describe("re-created sessions", () => {
  const session = (token: string) => ({ token, claims: CLAIMS });

  it("re-creates a session once however many requests of it arrive together", async () => {
    const replayed = new ReplayedSessions();
    let created = 0;
    const create = async () => {
      created++;
      return session("new");
    };
    const all = await Promise.all([1, 2, 3].map(() => replayed.getOrCreate("old", create)));
    expect(all.map((s) => s.token)).toEqual(["new", "new", "new"]);
    expect(created).toBe(1);
    expect(replayed.get("old")?.token).toBe("new");
  });

  it("forgets a failed attempt (the next request tries again), a deleted session, and the oldest past the bound", async () => {
    const replayed = new ReplayedSessions(2);
    await expect(replayed.getOrCreate("old", () => Promise.reject(new Error("down")))).rejects.toThrow(
      "down",
    );
    expect(replayed.get("old")).toBeUndefined();
    await replayed.getOrCreate("a", async () => session("A"));
    await replayed.getOrCreate("b", async () => session("B"));
    replayed.forget("A");
    expect(replayed.get("a")).toBeUndefined();
    await replayed.getOrCreate("c", async () => session("C"));
    await replayed.getOrCreate("d", async () => session("D"));
    expect([replayed.get("b"), replayed.get("c")?.token, replayed.get("d")?.token]).toEqual([
      undefined,
      "C",
      "D",
    ]);
  });
});
