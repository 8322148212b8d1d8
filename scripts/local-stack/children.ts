// The local stack's child processes: node run directly (no shell in between), each the leader of
// its own process group (and session). The terminal sends Ctrl-C's SIGINT to its whole foreground
// process group; were the children in it, the sidecar would start draining and the server stopping
// at the same moment, and the stack's own ordered SIGTERM would then reach the sidecar as a second
// signal ("stop now") and cut the calls in flight. In their own groups only the stack hears Ctrl-C,
// and it alone decides who stops when.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

/** What stopGracefully needs of a child: tests hand in a fake one. */
export interface Stoppable {
  readonly running: boolean;
  readonly exited: Promise<number | null>;
  /** The signal that asks it to stop gracefully: SIGTERM, unless it says otherwise. */
  readonly stopSignal?: NodeJS.Signals;
  signal(signal: NodeJS.Signals): void;
}

export interface Child extends Stoppable {
  readonly name: string;
  readonly pid: number;
  /** The child's "cannot listen" log line, once it has logged one. */
  readonly listenFailure: Record<string, unknown> | undefined;
  /** Resolves with the first JSON log line whose msg is `msg`; rejects if the child exits first. */
  waitForLog(msg: string): Promise<Record<string, unknown>>;
}

export class ChildExitedError extends Error {
  readonly child: Child;
  constructor(child: Child, code: number | null, before: string) {
    super(`${child.name} exited with code ${code} before ${before}`);
    this.child = child;
  }
}

export interface StartOptions {
  readonly cwd: URL;
  readonly env: Record<string, string>;
  /** Every line the child prints, stdout and stderr. */
  readonly onLine: (line: string) => void;
  /** Its graceful stop signal, when not SIGTERM (HAProxy's is SIGUSR1; SIGTERM is its hard stop). */
  readonly stopSignal?: NodeJS.Signals;
}

/** A Node script of the project, run with the project's Node. */
export function startChild(name: string, script: string, args: string[], options: StartOptions): Child {
  return startExecutable(name, process.execPath, [script, ...args], options);
}

/** Any executable (HAProxy for --replicas), as startChild runs its scripts: own group, no shell. */
export function startExecutable(name: string, command: string, argv: string[], options: StartOptions): Child {
  const child: ChildProcess = spawn(command, argv, {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
    detached: true,
  });
  // A missing executable is reported by the pid check below; the event must not go unhandled.
  child.once("error", () => {});
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start the ${name} (${command} ${argv[0] ?? ""})`);
  let running = true;
  let listenFailure: Record<string, unknown> | undefined;
  const waiters = new Map<string, (line: Record<string, unknown>) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) => {
      options.onLine(line);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return; // not a JSON line: shown, nothing to wait on
      }
      if (parsed.msg === "cannot listen") listenFailure = parsed;
      waiters.get(String(parsed.msg))?.(parsed);
    });
  }
  const exited = once(child, "exit").then(([code]) => {
    running = false;
    return code as number | null;
  });
  const handle: Child = {
    name,
    pid,
    exited,
    ...(options.stopSignal ? { stopSignal: options.stopSignal } : {}),
    get running() {
      return running;
    },
    get listenFailure() {
      return listenFailure;
    },
    waitForLog: (msg) =>
      Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.set(msg, resolve)),
        exited.then((code) => {
          throw new ChildExitedError(handle, code, `logging "${msg}"`);
        }),
      ]),
    signal(signal) {
      // Only while it runs: once reaped, its pid (and so its group id) may be another's.
      if (!running) return;
      try {
        process.kill(-pid, signal);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    },
  };
  return handle;
}

/**
 * SIGTERM (or its own stop signal) to the child's group, SIGKILL to it if still there after `graceMs` (ECS's stopTimeout
 * works the same way); resolves with the exit code (null when killed by a signal).
 */
export async function stopGracefully(child: Stoppable, graceMs: number): Promise<number | null> {
  if (!child.running) return child.exited;
  child.signal(child.stopSignal ?? "SIGTERM");
  const timer = setTimeout(() => child.signal("SIGKILL"), graceMs);
  timer.unref();
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}
