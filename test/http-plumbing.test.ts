// The HTTP plumbing the front door and the upstreams share: the bounded wait for a request body
// (fake timers), the one classifier of transport errors, request ids, and the in-flight registry
// the drain counts.
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { InFlight } from "../proxy/front/in-flight.ts";
import { BodyPrefix, readBodyPrefix } from "../proxy/http/body-prefix.ts";
import { ensureRequestId } from "../proxy/http/headers.ts";
import { classifyTransportError, isTimeout } from "../proxy/http/transport-errors.ts";
import type { InFlightExchange } from "../proxy/upstream/upstream.ts";

describe("BodyPrefix (fake timers)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits for the end of the body, up to the bound and not a moment longer", () => {
    const prefix = new BodyPrefix(1024);
    const then = vi.fn();
    prefix.take(Buffer.from('{"id":'));
    prefix.whenSettled(1000, then);
    vi.advanceTimersByTime(999);
    expect(then).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(then).toHaveBeenCalledOnce();
    // Too late: the body is incomplete, so there is nothing to quote.
    expect(prefix.bytes).toBeUndefined();
    prefix.end();
    expect(then).toHaveBeenCalledOnce();
  });

  it("answers at once when the body completes within the bound, and clears its timer", () => {
    const prefix = new BodyPrefix(1024);
    const then = vi.fn();
    prefix.take(Buffer.from('{"id":'));
    prefix.whenSettled(1000, then);
    prefix.take(Buffer.from("7}"));
    prefix.end();
    expect(then).toHaveBeenCalledOnce();
    expect(prefix.bytes?.toString()).toBe('{"id":7}');
    expect(vi.getTimerCount()).toBe(0);
  });

  it("does not wait for a body beyond its limit: nothing of it could be quoted", () => {
    const prefix = new BodyPrefix(8);
    const then = vi.fn();
    prefix.whenSettled(1000, then);
    prefix.take(Buffer.from("12345"));
    expect(then).not.toHaveBeenCalled();
    prefix.take(Buffer.from("6789"));
    expect(then).toHaveBeenCalledOnce();
    expect(prefix.dropped).toBe(true);
    prefix.end();
    expect(prefix.bytes).toBeUndefined();
  });

  it("runs at once when already settled; keeps the chunks read, without copying one", () => {
    const prefix = new BodyPrefix(8);
    const chunk = Buffer.from("abc");
    prefix.take(chunk);
    prefix.end();
    const then = vi.fn();
    prefix.whenSettled(1000, then);
    expect(then).toHaveBeenCalledOnce();
    expect(prefix.bytes).toBe(chunk);
    // Exactly at the limit is kept.
    const full = new BodyPrefix(3);
    full.take(chunk);
    full.end();
    expect(full.bytes).toBe(chunk);
  });

  it("readBodyPrefix: a stalled upload resolves undefined at the bound; a complete one with its bytes", async () => {
    const stalled = new PassThrough();
    const pending = readBodyPrefix(stalled as unknown as IncomingMessage, 1024, 1000);
    stalled.write('{"jsonrpc":"2.0",');
    await vi.advanceTimersByTimeAsync(1000);
    expect(await pending).toBeUndefined();
    // It let go of the stream: nothing more is read from it.
    expect(stalled.listenerCount("data")).toBe(0);

    const complete = new PassThrough();
    const read = readBodyPrefix(complete as unknown as IncomingMessage, 1024, 1000);
    complete.end('{"id":1}');
    expect((await read)?.toString()).toBe('{"id":1}');

    const broken = new PassThrough();
    const failed = readBodyPrefix(broken as unknown as IncomingMessage, 1024, 1000);
    broken.destroy(new Error("reset"));
    expect(await failed).toBeUndefined();
  });
});

describe("classifyTransportError", () => {
  const withCode = (code: string, message = "m") => Object.assign(new Error(message), { code });
  const named = (name: string) => Object.assign(new Error("m"), { name });

  it.each([
    [withCode("ECONNREFUSED"), "refused"],
    [withCode("UND_ERR_CONNECT_TIMEOUT"), "connect_timeout"],
    [withCode("UND_ERR_HEADERS_TIMEOUT"), "headers_timeout"],
    [withCode("UND_ERR_BODY_TIMEOUT"), "body_timeout"],
    [withCode("ETIMEDOUT"), "timeout"],
    [withCode("UND_ERR_ABORTED"), "timeout"],
    [named("TimeoutError"), "timeout"],
    [named("AbortError"), "timeout"],
    [withCode("UND_ERR_SOCKET"), "connection_lost"],
    [withCode("ECONNRESET"), "connection_lost"],
    [withCode("EPIPE"), "connection_lost"],
    [withCode("UND_ERR_CLOSED"), "connection_lost"],
    [withCode("EHOSTUNREACH"), "other"],
    [new Error("plain"), "other"],
    ["a string", "other"],
  ] as const)("%s is %s", (error, failure) => {
    expect(classifyTransportError(error).failure).toBe(failure);
  });

  it("describes by code and message, and knows which failures are deadlines", () => {
    expect(classifyTransportError(withCode("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1")).detail).toBe(
      "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1",
    );
    expect(classifyTransportError(new Error("plain")).detail).toBe("plain");
    const deadlines = ["connect_timeout", "headers_timeout", "body_timeout", "timeout"] as const;
    for (const failure of deadlines) expect(isTimeout(failure)).toBe(true);
    for (const failure of ["refused", "connection_lost", "other"] as const)
      expect(isTimeout(failure)).toBe(false);
  });
});

describe("ensureRequestId", () => {
  it("keeps a usable client id, and replaces an unusable one in the headers too", () => {
    const fresh = () => "new-id";
    const kept = ["x-request-id", "abc-123"];
    expect(ensureRequestId(kept, "abc-123", fresh)).toBe("abc-123");
    expect(kept).toEqual(["x-request-id", "abc-123"]);
    const replaced = ["X-Request-Id", "bad id", "accept", "*/*"];
    expect(ensureRequestId(replaced, "bad id", fresh)).toBe("new-id");
    expect(replaced).toEqual(["accept", "*/*", "x-request-id", "new-id"]);
    const added: string[] = [];
    expect(ensureRequestId(added, undefined, fresh)).toBe("new-id");
    expect(added).toEqual(["x-request-id", "new-id"]);
    expect(ensureRequestId([], "x".repeat(129), fresh)).toBe("new-id");
    expect(ensureRequestId([], "a.b:c@d/e+f=g-h_i", fresh)).toBe("a.b:c@d/e+f=g-h_i");
  });
});

describe("InFlight", () => {
  function response(headersSent = false): ServerResponse {
    const headers = new Map<string, string>();
    return {
      headersSent,
      setHeader: (name: string, value: string) => headers.set(name, value),
      getHeader: (name: string) => headers.get(name),
      once: () => undefined,
    } as unknown as ServerResponse;
  }
  function exchange(kind: "call" | "endless"): InFlightExchange & { closed: number[]; cuts: number } {
    const record = {
      kind,
      closed: [] as number[],
      cuts: 0,
      closeEndless: (ms: number) => record.closed.push(ms),
      cut: () => {
        record.cuts++;
      },
      describe: () => ({
        id: kind,
        method: "GET",
        target: "/",
        mcpMethod: undefined,
        mcpName: undefined,
        ageMs: 0,
        kind,
      }),
    };
    return record;
  }

  it("counts one entry per response: replacing what answers it changes nothing", () => {
    const counts: number[] = [];
    const inFlight = new InFlight((count) => counts.push(count));
    const res = response();
    inFlight.set(res, null);
    inFlight.set(res, exchange("call"));
    inFlight.delete(res);
    inFlight.delete(res);
    expect(counts).toEqual([1, 0]);
  });

  it("closes only endless streams, cuts only exchanges (reporting each), and marks answers not begun", () => {
    const inFlight = new InFlight(() => {});
    const call = exchange("call");
    const stream = exchange("endless");
    const waiting = response(false);
    const begun = response(true);
    inFlight.set(waiting, call);
    inFlight.set(begun, stream);
    inFlight.set(response(), null);
    inFlight.closeEndless(2000);
    expect(stream.closed).toEqual([2000]);
    expect(call.closed).toEqual([]);
    inFlight.closeConnectionsAfterAnswers();
    expect(waiting.getHeader("connection")).toBe("close");
    expect(begun.getHeader("connection")).toBeUndefined();
    const reported: string[] = [];
    inFlight.cut((cut) => reported.push(cut.kind));
    expect(reported).toEqual(["call", "endless"]);
    expect([call.cuts, stream.cuts]).toEqual([1, 1]);
  });
});
