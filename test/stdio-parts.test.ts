// The pure parts of the stdio upstream: a child's environment, and how its stderr reaches the log
// (line by line, cut, rate-limited on a manual clock, with a tail kept for the exit report), and
// the answers a session keeps for its calls' outcomes.
import { describe, expect, it } from "vitest";
import { CallAnswers, MAX_KEPT_ANSWERS } from "../proxy/upstream/stdio/call-answers.ts";
import { childEnvironment } from "../proxy/upstream/stdio/environment.ts";
import { loadStdioSdk } from "../proxy/upstream/stdio/sdk.ts";
import type { ChildLink } from "../proxy/upstream/stdio/session.ts";
import { StartBackoff } from "../proxy/upstream/stdio/start-backoff.ts";
import { StderrLog } from "../proxy/upstream/stdio/stderr-log.ts";
import { sessionOver } from "./helpers/stdio-session.ts";

describe("childEnvironment", () => {
  it("is PATH, HOME, LANG, TZ, PYTHONUNBUFFERED, the --stdio-env settings and the secrets: nothing else of the sidecar's", () => {
    const base = { PATH: "/bin", HOME: "/h", LANG: "C", TZ: "UTC", EXTRA: "e", AWS_TOKEN: "s3cr3t" };
    expect(
      childEnvironment(
        base,
        [
          { name: "EXTRA", value: undefined },
          { name: "MODE", value: "x" },
        ],
        { API_KEY: "s3cr3t-k" },
      ),
    ).toEqual({
      PATH: "/bin",
      HOME: "/h",
      LANG: "C",
      TZ: "UTC",
      PYTHONUNBUFFERED: "1",
      EXTRA: "e",
      MODE: "x",
      API_KEY: "s3cr3t-k",
    });
    expect(childEnvironment({ PATH: "/bin", AWS_TOKEN: "s3cr3t" }, [], {})).toEqual({
      PATH: "/bin",
      PYTHONUNBUFFERED: "1",
    });
    // A --stdio-env says otherwise.
    expect(childEnvironment({}, [{ name: "PYTHONUNBUFFERED", value: "" }], {})).toEqual({
      PYTHONUNBUFFERED: "",
    });
  });
});

describe("StartBackoff (manual clock)", () => {
  it("waits 200 ms after a failed start, doubling per failure in a row up to 30 s; one answer resets it", () => {
    let now = 0;
    const backoff = new StartBackoff(() => now);
    expect(backoff.left()).toBe(0);
    expect(backoff.describe()).toBeUndefined();
    backoff.failed("srv exited with code 1");
    expect(backoff.left()).toBe(200);
    now = 150;
    expect(backoff.left()).toBe(50);
    now = 200;
    expect(backoff.left()).toBe(0);
    // Still failing, and /ready says so, between tries as well.
    expect(backoff.describe()).toBe("children cannot be started: srv exited with code 1 (1 in a row)");
    backoff.failed("srv exited with code 2");
    expect(backoff.left()).toBe(400);
    expect(backoff.describe()).toBe(
      "children cannot be started: srv exited with code 2 (2 in a row; next try in 1 s)",
    );
    for (let i = 0; i < 20; i++) backoff.failed("srv exited with code 2");
    expect(backoff.left()).toBe(30_000);
    backoff.succeeded();
    expect(backoff.left()).toBe(0);
    expect(backoff.reason).toBeUndefined();
  });
});

describe("StderrLog (manual clock)", () => {
  function harness(settings = { maxLineBytes: 10, linesPerSecond: 2, burst: 3, tailLines: 2 }) {
    let now = 0;
    const lines: Record<string, unknown>[] = [];
    const log = new StderrLog(
      (fields, message) => lines.push({ ...fields, message }),
      settings,
      () => now,
    );
    return { log, lines, advance: (ms: number) => (now += ms) };
  }

  it("logs whole lines, across chunks and CRLF, and the unfinished last one when the child is gone", () => {
    const { log, lines } = harness();
    log.write("one\r\ntw");
    log.write("o\nthr");
    expect(lines.map((l) => l.line)).toEqual(["one", "two"]);
    log.flush();
    expect(lines.map((l) => l.line)).toEqual(["one", "two", "thr"]);
    expect(lines[0]).toMatchObject({ stream: "stderr", message: "stdio server stderr" });
  });

  it("cuts long lines, a line that never ends included, and keeps the last lines for the exit report", () => {
    const { log, lines } = harness();
    log.write("0123456789abcdef\n");
    expect(lines[0]?.line).toBe("0123456789…[cut]");
    log.write("x".repeat(25));
    expect(lines[1]?.line).toBe(`${"x".repeat(10)}…[cut]`);
    log.write("a\nb\n");
    expect(log.tail()).toEqual(["a", "b"]);
  });

  it("bounds the rate: a burst, then so many a second; a flood is summarised once it ends", () => {
    const { log, lines, advance } = harness();
    log.write("1\n2\n3\n4\n5\n");
    expect(lines.map((l) => l.line)).toEqual(["1", "2", "3"]);
    advance(1000);
    log.write("6\n");
    expect(lines.at(-2)).toMatchObject({
      dropped: 2,
      message: "stdio server stderr lines dropped (rate limit)",
    });
    expect(lines.at(-1)?.line).toBe("6");
    log.write("7\n8\n");
    log.flush();
    expect(lines.at(-1)).toMatchObject({ dropped: 1 });
  });
});

describe("StdioSession's kept answers (for each call's outcome)", () => {
  // The child's side is the ChildLink interface (a process in production); here its messages are
  // handed in directly, as the process wrapper would, to count what the session keeps.
  it("are taken once by the summary that asks, and bounded when nothing asks (a batch's later requests)", async () => {
    const sdk = await loadStdioSdk();
    const link: ChildLink = {
      send: () => true,
      onmessage: undefined,
      onexit: undefined,
      stop: async () => {},
    };
    const session = sessionOver(link, sdk, "s");
    const answer = (id: number) => link.onmessage?.({ jsonrpc: "2.0", id, result: { content: [] } });
    answer(1);
    expect(session.answerTo(1)).toBeDefined();
    expect(session.answerTo(1)).toBeUndefined();
    for (let id = 100; id < 100 + MAX_KEPT_ANSWERS + 44; id++) answer(id);
    expect(session.answerTo(100)).toBeUndefined();
    expect(session.answerTo(143)).toBeUndefined();
    expect(session.answerTo(144)).toBeDefined();
    expect(session.answerTo(100 + MAX_KEPT_ANSWERS + 43)).toBeDefined();
    await session.end("stopped");
  });
});

describe("CallAnswers (a legacy POST's call ends on the stream, after its 202)", () => {
  it("tells a waiting exchange how its call ended, at once when it already has; nothing when the session ends first", () => {
    const answers = new CallAnswers();
    const heard: [number, string | undefined][] = [];
    answers.answered(1, "tool_error");
    answers.onAnswer(1, (answer) => heard.push([1, answer]));
    answers.onAnswer(2, (answer) => heard.push([2, answer]));
    answers.onAnswer(3, (answer) => heard.push([3, answer]));
    expect(heard).toEqual([[1, "tool_error"]]);
    answers.answered(2, "error");
    expect(heard).toEqual([
      [1, "tool_error"],
      [2, "error"],
    ]);
    expect(answers.take(2)).toBeUndefined();
    // A call its client cancelled may never be answered: its exchange hears so at once.
    answers.onAnswer(5, (answer) => heard.push([5, answer]));
    answers.cancelled(5);
    expect(heard.at(-1)).toEqual([5, undefined]);
    heard.pop();
    // The same id waited for twice (a client reusing an id in flight): the first hears nothing more.
    answers.onAnswer(6, (answer) => heard.push([6, answer]));
    answers.onAnswer(6, (answer) => heard.push([60, answer]));
    expect(heard.at(-1)).toEqual([6, undefined]);
    answers.answered(6, "result");
    expect(heard.at(-1)).toEqual([60, "result"]);
    heard.splice(-2);
    answers.end();
    answers.onAnswer(4, (answer) => heard.push([4, answer]));
    expect(heard.slice(2)).toEqual([
      [3, undefined],
      [4, undefined],
    ]);
  });
});
