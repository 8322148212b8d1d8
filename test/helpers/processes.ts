// Real processes for tests: started with the project's Node (24), their output collected line by
// line, waited on by what they print (never by sleeping), and always stopped in teardown.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { capture } from "./capture.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const running = new Set<ChildProcess>();

export interface Started {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first line (past or future) that matches; rejects if the process exits first. */
  waitForLine(test: (line: string) => boolean, what?: string): Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export function startProcess(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; detached?: boolean } = {},
): Started {
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, as a terminal's foreground job is: signals can go to the whole group.
    detached: options.detached ?? false,
  });
  running.add(child);
  const lines: string[] = [];
  const watchers = new Set<(line: string) => void>();
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  const feed = (stream: NodeJS.ReadableStream) => {
    let buffer = "";
    stream.setEncoding("utf8");
    stream.on("data", (data: string) => {
      buffer += data;
      let newline = buffer.indexOf("\n");
      while (newline !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        capture("process output", line);
        for (const watcher of watchers) watcher(line);
        newline = buffer.indexOf("\n");
      }
    });
  };
  feed(child.stdout as NodeJS.ReadableStream);
  feed(child.stderr as NodeJS.ReadableStream);
  return {
    child,
    lines,
    exited,
    waitForLine(test, what = "a matching line") {
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const watcher = (line: string) => {
          if (!test(line)) return;
          watchers.delete(watcher);
          resolve(line);
        };
        watchers.add(watcher);
        void exited.then((info) => {
          if (!watchers.has(watcher)) return;
          watchers.delete(watcher);
          reject(
            new Error(
              `${command} ${args.join(" ")} exited (${JSON.stringify(info)}) before ${what}:\n${lines.join("\n")}`,
            ),
          );
        });
      });
    },
    kill(signal = "SIGTERM") {
      if (exitInfo === undefined) child.kill(signal);
    },
  };
}

/** Parses a JSON log line, or undefined. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function node(
  script: string,
  args: readonly string[],
  env?: Record<string, string | undefined>,
): Started {
  return startProcess(process.execPath, [script, ...args], { env });
}

/** The reference server on an ephemeral port. */
export async function startReferenceServer(args: readonly string[] = [], env?: Record<string, string>) {
  const proc = node("server/main.ts", ["--port", "0", ...args], env);
  const line = await proc.waitForLine((l) => jsonLine(l)?.msg === "listening", "the server listening");
  const url = new URL(String(jsonLine(line)?.url));
  return { proc, url, origin: url.origin };
}

/** The sidecar CLI as a real process on an ephemeral port. */
export async function startSidecarProcess(args: readonly string[], env?: Record<string, string>) {
  const proc = node("proxy/cli.ts", ["--port", "0", "--host", "127.0.0.1", ...args], env);
  const line = await proc.waitForLine(
    (l) => jsonLine(l)?.msg === "sidecar listening",
    "the sidecar listening",
  );
  return { proc, url: new URL(String(jsonLine(line)?.url)) };
}

/** Stops every process a test left running (SIGKILL: teardown must not hang). */
export async function stopAllProcesses(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of running) {
    waits.push(once(child, "exit"));
    child.kill("SIGKILL");
  }
  await Promise.all(waits);
}
