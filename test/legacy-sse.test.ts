// The legacy HTTP+SSE transport as the drain follows it: which POST target belongs to which GET
// stream (its endpoint event), which posted requests still await their answer on that stream.
import { describe, expect, it, vi } from "vitest";
import { endpointTarget, LegacyPost, LegacySessions } from "../proxy/protocol/legacy-sse.ts";

const feed = (stream: { feed(chunk: Buffer): void }, ...parts: string[]) => {
  for (const part of parts) stream.feed(Buffer.from(part));
};

describe("endpointTarget", () => {
  it.each([
    ["/messages?sessionId=abc", "/sse", "/messages?sessionId=abc"],
    ["message?sessionId=abc", "/mcp/sse", "/mcp/message?sessionId=abc"],
    ["http://127.0.0.1:3000/messages?sessionId=abc", "/sse", "/messages?sessionId=abc"],
    [" /messages?sessionId=a%20b ", "/sse", "/messages?sessionId=a%20b"],
  ])("%j announced on %s is POSTed to %s", (endpoint, stream, target) => {
    expect(endpointTarget(endpoint, stream)).toBe(target);
  });

  it("is undefined for what is not a URL", () => {
    expect(endpointTarget("http://[", "/sse")).toBeUndefined();
  });
});

describe("LegacySessions", () => {
  it("maps a POST target to the stream whose endpoint event named it, once named, until it closes", () => {
    const sessions = new LegacySessions();
    const stream = sessions.open("/sse");
    expect(sessions.streamFor("/messages?sessionId=s1")).toBeUndefined();
    // The endpoint event split over chunks, CRLF line ends.
    feed(stream, "event: endp", "oint\r\ndata: /messages?session", "Id=s1\r\n\r\n");
    expect(stream.endpoint).toBe("/messages?sessionId=s1");
    expect(sessions.streamFor("/messages?sessionId=s1")).toBe(stream);
    expect(sessions.streamFor("/messages?sessionId=s2")).toBeUndefined();
    stream.close();
    expect(sessions.streamFor("/messages?sessionId=s1")).toBeUndefined();
    expect(sessions.size).toBe(0);
  });

  it("counts what was posted and not answered yet, by JSON-RPC id (numbers and strings apart)", () => {
    const sessions = new LegacySessions();
    const stream = sessions.open("/sse");
    feed(stream, "event: endpoint\ndata: /m?sessionId=1\n\n");
    new LegacyPost(stream).posted([1, "1", "a"]);
    expect(stream.pending).toBe(3);
    // A progress notification and a server request answer nothing.
    feed(stream, 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n');
    feed(stream, 'event: message\ndata: {"jsonrpc":"2.0","id":"srv-1","method":"roots/list"}\n\n');
    expect(stream.pending).toBe(3);
    feed(stream, 'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
    expect(stream.pending).toBe(2);
    // A batch answers each of its members; an error is an answer too. A split multi-byte character
    // (é) across chunks does not break the event.
    const batch = Buffer.from(
      'data: [{"jsonrpc":"2.0","id":"1","error":{"message":"é"}},{"jsonrpc":"2.0","id":"a","result":{}}]\n\n',
    );
    const cut = batch.indexOf(0xc3) + 1;
    stream.feed(batch.subarray(0, cut));
    stream.feed(batch.subarray(cut));
    expect(stream.pending).toBe(0);
  });

  it("calls whenAnswered once everything posted is answered, at once when nothing is pending", () => {
    const sessions = new LegacySessions();
    const stream = sessions.open("/sse");
    const idle = vi.fn();
    stream.whenAnswered(idle);
    expect(idle).toHaveBeenCalledOnce();
    const post = new LegacyPost(stream);
    post.posted([7, 8]);
    const then = vi.fn();
    stream.whenAnswered(then);
    feed(stream, 'data: {"jsonrpc":"2.0","id":7,"result":{}}\n\n');
    expect(then).not.toHaveBeenCalled();
    feed(stream, 'data: {"jsonrpc":"2.0","id":8,"result":{}}\n\n');
    expect(then).toHaveBeenCalledOnce();
  });

  it("forgets a failed POST's ids, so a drain does not wait for answers that will never come", () => {
    const sessions = new LegacySessions();
    const stream = sessions.open("/sse");
    const post = new LegacyPost(stream);
    post.posted([1, 2]);
    new LegacyPost(stream).posted([3]);
    const then = vi.fn();
    stream.whenAnswered(then);
    post.failed();
    expect(stream.pending).toBe(1);
    expect(then).not.toHaveBeenCalled();
    feed(stream, 'data: {"jsonrpc":"2.0","id":3,"result":{}}\n\n');
    expect(then).toHaveBeenCalledOnce();
  });
});
