// One stdio MCP server process: spawned with no shell, the leader of its own process group,
// JSON-RPC one message per line on stdin/stdout (the MCP SDK's framing), stderr to the log as
// bounded info lines, stopped as a whole group with the SDK stdio client's escalation.

import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import type { ReadBuffer } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { StdioSdk } from "./sdk.ts";
import type { ChildLink } from "./session.ts";
import type { StderrLog } from "./stderr-log.ts";

/**
 * A child's OOM score adjustment (-1000..1000; raising one's own or a child's needs no privilege).
 * In a container that holds the sidecar and its children under one memory limit, the kernel's OOM
 * killer then ends a child (one session, its calls answered at once) before the sidecar (every
 * session, and the task). Inherited by what the child starts.
 */
export const CHILD_OOM_SCORE_ADJ = 500;

function preferForOomKill(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(CHILD_OOM_SCORE_ADJ));
  } catch {
    // Not Linux, or no /proc: the kernel's own choice stands.
  }
}

export interface ProcessSpec {
  readonly commandLine: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  /** Each escalation step's wait: stdin closed -> SIGTERM -> SIGKILL. */
  readonly graceMs: number;
}

export type ExitCause = "stopped" | "exited" | "crashed" | "killed" | "start_failed";

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly cause: ExitCause;
  readonly description: string;
}

export interface ProcessHooks {
  readonly sdk: StdioSdk;
  readonly stderr: StderrLog;
  /** Once, with how it ended. */
  readonly exited: (exit: ProcessExit) => void;
  /** A stdout line that is not a JSON-RPC message: dropped, reported. */
  readonly junk: (detail: string) => void;
  /** Where the child's process group is registered while it may have members (the reaper). */
  readonly groups?: { add(pgid: number): void; remove(pgid: number): void };
}

export class StdioProcess implements ChildLink {
  onmessage: ((message: JSONRPCMessage) => void) | undefined;
  onexit: ((description: string) => void) | undefined;
  readonly #child: ChildProcess;
  readonly #spec: ProcessSpec;
  readonly #hooks: ProcessHooks;
  readonly #read: ReadBuffer;
  readonly #exited: Promise<ProcessExit>;
  readonly #startedAt = Date.now();
  #running = true;
  #stopRequested = false;
  #stopping: Promise<ProcessExit> | undefined;

  constructor(spec: ProcessSpec, hooks: ProcessHooks) {
    this.#spec = spec;
    this.#hooks = hooks;
    this.#read = new hooks.sdk.ReadBuffer();
    const [command, ...args] = spec.commandLine as [string, ...string[]];
    this.#child = spawn(command, args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ["pipe", "pipe", "pipe"],
      // Its own process group: a stop reaches its grandchildren too, and the terminal's Ctrl-C
      // (sent to the sidecar's group) does not reach it behind the sidecar's back.
      detached: true,
      shell: false,
    });
    const { promise, resolve } = Promise.withResolvers<ProcessExit>();
    this.#exited = promise;
    let spawnError: NodeJS.ErrnoException | undefined;
    this.#child.once("error", (error: NodeJS.ErrnoException) => {
      spawnError = error;
      // No 'exit' follows a failed spawn.
      if (this.#child.pid === undefined) this.#finish(null, null, spawnError, resolve);
    });
    this.#child.once("exit", (code, signal) => this.#finish(code, signal, spawnError, resolve));
    if (this.#child.pid !== undefined) {
      hooks.groups?.add(this.#child.pid);
      preferForOomKill(this.#child.pid);
    }
    this.#child.stdout?.on("data", (chunk: Buffer) => this.#onStdout(chunk));
    this.#child.stderr?.setEncoding("utf8").on("data", (text: string) => hooks.stderr.write(text));
    // A child that stops reading its stdin must not crash the sidecar with EPIPE.
    this.#child.stdin?.on("error", () => {});
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#running;
  }

  get exited(): Promise<ProcessExit> {
    return this.#exited;
  }

  send(message: JSONRPCMessage): boolean {
    const stdin = this.#child.stdin;
    if (!this.#running || stdin === null || stdin.destroyed || stdin.writableEnded) return false;
    // Writes queue in the stream while the pipe is full: nothing is dropped, order is kept.
    stdin.write(this.#hooks.sdk.serializeMessage(message));
    return true;
  }

  /** Stdin closed, then SIGTERM, then SIGKILL, to the whole group. Idempotent. */
  stop(): Promise<ProcessExit> {
    this.#stopping ??= this.#escalate();
    return this.#stopping;
  }

  /** SIGKILL the whole group now: the last resort, synchronous (an `exit` handler may call it). */
  killNow(): void {
    this.#stopRequested = true;
    this.#signalGroup("SIGKILL");
  }

  async #escalate(): Promise<ProcessExit> {
    this.#stopRequested = true;
    this.#child.stdin?.end();
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      if (await this.#exitsWithin(this.#spec.graceMs)) break;
      this.#signalGroup(signal);
    }
    return this.#exited;
  }

  #exitsWithin(ms: number): Promise<boolean> {
    if (!this.#running) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      timer.unref();
      void this.#exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Signals the process group the child leads. The kernel does not hand out a pid still in use as
   * a group id, so while any member lives this reaches that group only; once it is empty, ESRCH.
   * (The last SIGKILL goes out right after the leader's exit, before its pid could be reused.)
   */
  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: nothing left in the group.
    }
  }

  #onStdout(chunk: Buffer): void {
    this.#read.append(chunk);
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.#read.readMessage();
      } catch (error) {
        this.#hooks.junk((error as Error).message.slice(0, 200));
        continue;
      }
      if (message === null) return;
      this.onmessage?.(message);
    }
  }

  #finish(
    code: number | null,
    signal: NodeJS.Signals | null,
    spawnError: NodeJS.ErrnoException | undefined,
    resolve: (exit: ProcessExit) => void,
  ): void {
    if (!this.#running) return;
    this.#running = false;
    // The leader is gone, stopped or not; what it started in its group must not outlive it.
    this.#signalGroup("SIGKILL");
    if (this.#child.pid !== undefined) this.#hooks.groups?.remove(this.#child.pid);
    this.#hooks.stderr.flush();
    const command = this.#spec.commandLine.join(" ");
    const uptimeMs = Date.now() - this.#startedAt;
    let cause: ExitCause;
    let description: string;
    if (spawnError !== undefined && this.#child.pid === undefined) {
      cause = "start_failed";
      description = `could not be started: ${command}: ${spawnError.code ?? spawnError.message}`;
    } else if (this.#stopRequested) {
      cause = "stopped";
      description = signal ? `was stopped (${signal})` : `was stopped (exit code ${code})`;
    } else if (signal !== null) {
      cause = "killed";
      description = `${command} was killed by ${signal}${signal === "SIGKILL" ? " (not by the sidecar: out of memory?)" : ""}`;
    } else {
      cause = code === 0 ? "exited" : "crashed";
      description = `${command} exited with code ${code} after ${uptimeMs} ms`;
    }
    // The log gets the tail of its stderr; clients and /ready do not: a server may print anything
    // there, its environment (and so its secrets) included.
    const tail = this.#hooks.stderr.tail();
    const logged =
      tail.length > 0 && cause !== "stopped"
        ? `${description}; last stderr: ${tail.join(" | ")}`
        : description;
    const exit = { code, signal, cause, description: logged };
    this.#hooks.exited(exit);
    this.onexit?.(description);
    resolve(exit);
  }
}
