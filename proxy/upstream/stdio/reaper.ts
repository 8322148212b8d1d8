// What ends the stdio children's process groups when the sidecar cannot: a SIGKILL (or an OOM kill)
// runs no handler. Each child sees its stdin end and, if it is a well-behaved MCP server, exits;
// what it started (grandchildren) lives on in its group. Linux has no unprivileged "kill my
// process groups when I die" reachable from Node without native code: PR_SET_PDEATHSIG must be set
// by each child itself and reaches one process, not its group; PR_SET_CHILD_SUBREAPER needs prctl
// in the sidecar. So a tiny reaper process, written by hand because no package does this: a POSIX
// shell loop, started with a fixed script (no user input reaches the shell, and no child is started
// through it), reading "+pgid" and "-pgid" lines on a pipe from the sidecar. When that pipe ends
// (the kernel closes a dead process's descriptors, however it died) it sends SIGTERM to every group
// still registered, waits the stop grace, and sends SIGKILL. Measured: about 1.7 MB RSS (dash).
//
// The pipe's write end is the sidecar's alone: Node opens pipes close-on-exec, so no server child
// holds it (else the end would wait for them). Where there is no /bin/sh (the distroless image)
// there is no reaper: there the sidecar is PID 1 of its container (or the only child of the init
// process ECS adds, which exits with it), and when PID 1 dies the kernel kills every process of its
// PID namespace.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";

// Digits only, no leading zero, above 1: "-0" would be the reaper's own group, "-1" every process
// it may signal. "$1" is the grace in seconds.
const SCRIPT = `
groups=
while IFS= read -r line; do
  g=\${line#?}
  case $g in ''|*[!0-9]*|0*) continue ;; esac
  [ "$g" -gt 1 ] || continue
  case $line in
    +*) groups="$groups $g" ;;
    -*) rest=; for x in $groups; do [ "$x" = "$g" ] || rest="$rest $x"; done; groups=$rest ;;
  esac
done
[ -n "$groups" ] || exit 0
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null; done
sleep "$1"
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
`;

export interface ReaperOptions {
  /** Between the SIGTERM and the SIGKILL it sends. */
  readonly graceMs: number;
  readonly shell: string;
  /** Once, if it cannot run or dies while the sidecar lives (then it is started again, once). */
  readonly lost: (description: string) => void;
}

/** The process groups the sidecar's children lead, ended by a separate process if the sidecar dies. */
export class GroupReaper {
  readonly #groups = new Set<number>();
  readonly #options: ReaperOptions;
  #process: ChildProcess;
  #restarts = 1;
  #closed = false;

  constructor(options: ReaperOptions) {
    this.#options = options;
    this.#process = this.#launch();
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  add(pgid: number): void {
    this.#groups.add(pgid);
    this.#send(`+${pgid}\n`);
  }

  remove(pgid: number): void {
    if (this.#groups.delete(pgid)) this.#send(`-${pgid}\n`);
  }

  /** Ends the pipe: any group still registered is ended, and the reaper exits. */
  close(): void {
    this.#closed = true;
    this.#process.stdin?.end();
  }

  #send(line: string): void {
    const stdin = this.#process.stdin;
    // Writes before the shell has started queue in the pipe's stream.
    if (stdin?.writable) stdin.write(line);
  }

  #launch(): ChildProcess {
    const { shell } = this.#options;
    const child = spawn(shell, ["-c", SCRIPT, "mcp-sidecar-reaper", String(this.#options.graceMs / 1000)], {
      // Its own session: a signal to the sidecar's group (a terminal's Ctrl-C) must not take the
      // reaper with it, or the groups it guards would outlive both.
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env: { PATH: "/usr/bin:/bin" },
      shell: false,
    });
    // It lives for the sidecar, never the other way round: it must not keep the event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    child.stdin?.on("error", () => {});
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        this.#closed = true;
        this.#options.lost(`cannot start the stdio reaper (${shell}): ${error.code ?? error.message}`);
      }
    });
    child.once("exit", (code, signal) => {
      if (this.#closed || child !== this.#process) return;
      const how = signal ?? `exit code ${code}`;
      if (this.#restarts-- <= 0) {
        this.#options.lost(`the stdio reaper died (${how}) again; not restarted`);
        return;
      }
      this.#process = this.#launch();
      for (const pgid of this.#groups) this.#send(`+${pgid}\n`);
      this.#options.lost(`the stdio reaper died (${how}); restarted`);
    });
    return child;
  }
}

export const REAPER_SHELL = "/bin/sh";

/** A reaper, or undefined where there is no shell to run one (see above: the distroless image). */
export function startReaper(
  options: Omit<ReaperOptions, "shell"> & { shell?: string },
): GroupReaper | undefined {
  const shell = options.shell ?? REAPER_SHELL;
  return existsSync(shell) ? new GroupReaper({ ...options, shell }) : undefined;
}
