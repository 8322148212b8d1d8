// The process logger's flush at exit, in a real child process whose stdout is a real pipe: it
// must return whatever became of the pipe's reader, or the sidecar could never exit. Waits on the
// child's exit, never on time.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { ROOT } from "./helpers/processes.ts";

const children: ChildProcess[] = [];
// A child that hangs (the behaviour under test broken) is not left behind.
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

/**
 * A child that logs `lines` lines, flushes as the CLI does before it exits, then exits 0. Its
 * stdout is made non-blocking, as Node's own process.stdout makes a pipe (the sidecar's --help and
 * subcommands write through it): a full pipe then answers EAGAIN instead of blocking the write.
 */
function loggingChild(lines: number, throughShellPipeTo?: string) {
  const script = `
    void process.stdout.fd;
    const { createProcessLogger } = await import(${JSON.stringify(`${ROOT}proxy/telemetry/logger.ts`)});
    const { logger, flushSync } = createProcessLogger("info");
    process.stdin.once("data", () => {
      for (let i = 0; i < ${lines}; i++) logger.info({ i, pad: "x".repeat(200) }, "a line");
      flushSync();
      // A line after the flush (an exit handler's): pino's own exit hook flushes it.
      logger.info("after the flush");
      process.stderr.write("exiting\\n");
      process.exit(0);
    });
    process.stderr.write("ready\\n");
  `;
  const child =
    throughShellPipeTo === undefined
      ? spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "pipe"] })
      : // A real pipe (Node's own "pipe" is a socketpair): what a shell, containerd or most supervisors give.
        spawn(
          "/bin/sh",
          [
            "-c",
            `{ "$0" --input-type=module -e "$1"; echo "node exited $?" >&2; } | ${throughShellPipeTo}`,
            process.execPath,
            script,
          ],
          {
            stdio: ["pipe", "pipe", "pipe"],
          },
        );
  children.push(child);
  const ready = new Promise<void>((resolve) =>
    child.stderr.setEncoding("utf8").on("data", (text: string) => text.includes("ready") && resolve()),
  );
  return { child, ready, go: () => child.stdin.write("go\n") };
}

describe("the process logger's flush before exit", () => {
  it("returns when stdout's reader is gone (EPIPE), and so does pino's own exit hook", async () => {
    const { child, ready, go } = loggingChild(10);
    await ready;
    child.stdout.destroy();
    go();
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });

  it("returns when stdout is a real pipe whose reader is gone", async () => {
    const { child, ready, go } = loggingChild(10, "true");
    let stderr = "";
    child.stderr.on("data", (text: string) => {
      stderr += text;
    });
    await ready;
    go();
    await once(child, "exit");
    expect(stderr).toContain("exiting");
    expect(stderr).toContain("node exited 0");
  });

  it("gives up on a stdout whose reader stopped reading, rather than waiting on it forever", async () => {
    const { child, ready, go } = loggingChild(20_000); // about 5 MB: more than the pipe holds
    await ready;
    child.stdout.pause();
    go();
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    child.stdout.destroy();
  }, 20_000);

  it("writes every line out when stdout is read", async () => {
    const { child, ready, go } = loggingChild(1000);
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      out += text;
    });
    await ready;
    go();
    await once(child, "exit");
    // The late line too: pino's exit hook flushed it.
    expect(out.trim().split("\n")).toHaveLength(1001);
  });
});
