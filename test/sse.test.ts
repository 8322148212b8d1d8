import { afterEach, describe, expect, it, vi } from "vitest";
import {
  countTrailingLineTerminators,
  SseEventBoundary,
  sseEventData,
  sseEvents,
  startSseKeepalive,
} from "../proxy/protocol/sse.ts";

function boundaryAfter(...chunks: string[]): boolean {
  const boundary = new SseEventBoundary();
  for (const chunk of chunks) boundary.observe(Buffer.from(chunk, "latin1"));
  return boundary.atBoundary;
}

describe("SseEventBoundary", () => {
  it("counts the start of a stream as a boundary", () => {
    expect(new SseEventBoundary().atBoundary).toBe(true);
  });

  it.each([
    [["data: a\n\n"], true],
    [["data: a\r\n\r\n"], true],
    [["data: a\r\r"], true],
    [["data: a\n"], false],
    [["data: a\r\n"], false],
    [["data: a"], false],
    [["data: a\n", "\n"], true],
    [["data: a\r", "\n"], false],
    [["data: a\r", "\n", "\r\n"], true],
    [["data: a\n\n", "event: x\n"], false],
    [["data: a\n\ndata: b\n", "data: c\n\n"], true],
    [["id: 1\n", "data: {}", "\n", "\n"], true],
    [[": keepalive\n\n"], true],
    [["x", "\n", "\r", "\n"], true],
  ])("after %j: %s", (chunks, expected) => {
    expect(boundaryAfter(...chunks)).toBe(expected);
  });

  it("ignores empty chunks", () => {
    expect(boundaryAfter("data: a\n\n", "")).toBe(true);
  });
});

describe("sseEvents and sseEventData", () => {
  it.each([
    ["data: a\n\ndata: b\n\n", ["data: a", "data: b", ""]],
    ["data: a\r\n\r\ndata: b", ["data: a", "data: b"]],
    ["data: a\r\rdata: b", ["data: a", "data: b"]],
    // One CRLF is one line end: the event goes on.
    ["data: a\r\ndata: b\r\n\r\n", ["data: a\r\ndata: b", ""]],
    ["data: a\n\r\ndata: b", ["data: a", "data: b"]],
  ])("splits %j into %j", (text, events) => {
    expect(sseEvents(text)).toEqual(events);
  });

  it("joins data lines with LF and drops one space after the colon", () => {
    expect(sseEventData('event: message\r\ndata: {"a":\r\ndata:1}\r\nid: 3')).toBe('{"a":\n1}');
    expect(sseEventData(": comment\nid: 3")).toBeUndefined();
  });
});

describe("countTrailingLineTerminators", () => {
  it.each([
    ["", 0],
    ["a", 0],
    ["a\n", 1],
    ["a\r\n", 1],
    ["\r\n\r\n", 2],
    ["\n\r\n", 2],
    ["\r\r\n", 2],
    ["\n\n\n", 2],
  ])("%j -> %d", (text, count) => expect(countTrailingLineTerminators(text)).toBe(count));
});

describe("startSseKeepalive", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires after the silence interval and re-arms", () => {
    vi.useFakeTimers();
    const onSilence = vi.fn();
    const timer = startSseKeepalive(15_000, onSilence);
    vi.advanceTimersByTime(14_999);
    expect(onSilence).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onSilence).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(15_000);
    expect(onSilence).toHaveBeenCalledTimes(2);
    timer.stop();
    vi.advanceTimersByTime(60_000);
    expect(onSilence).toHaveBeenCalledTimes(2);
  });

  it("restarts the window on every touch, so a busy stream gets no keepalive", () => {
    vi.useFakeTimers();
    const onSilence = vi.fn();
    const timer = startSseKeepalive(1000, onSilence);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(900);
      timer.touch();
    }
    expect(onSilence).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1000);
    expect(onSilence).toHaveBeenCalledTimes(1);
    timer.stop();
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])("is disabled by interval %d", (interval) => {
    vi.useFakeTimers();
    const onSilence = vi.fn();
    startSseKeepalive(interval, onSilence);
    vi.advanceTimersByTime(3_600_000);
    expect(onSilence).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});
