// A stdio server in the task: checked and sized. No container of its own: the sidecar runs it as
// its children, inside the sidecar's container, one per session, so the task's memory decides how
// many sessions a task holds (plan/memory.ts). Pure; every problem names its setting.

import { SIDECAR_ONLY_ENV } from "../../proxy/config.ts";
import type { StdioPlan, StdioServer } from "./containers.ts";
import { STDIO_CHILD_MEMORY_MIB, stdioMemoryPlan, stdioMemoryProblems } from "./memory.ts";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * A child's plain variables sit in the sidecar's container environment (the sidecar passes them on
 * by name), so none may be one the sidecar's own process reads: its own (the sidecar's parser
 * refuses them for children too), and Node's, the loader's and libuv's, which would change the
 * sidecar itself (NODE_OPTIONS holds its heap limits).
 */
const SIDECAR_PROCESS_ENV = /^(NODE_.*|LD_.*|UV_.*)$/;
/** The sidecar's own --stdio-spares default: one child started ahead of need. */
export const STDIO_SPARES_DEFAULT = 1;
/** The sidecar's own --stdio-pool default: two children for 2026-07-28 stateless requests. */
export const STDIO_POOL_DEFAULT = 2;

export function stdioPlan(
  server: StdioServer,
  taskMemoryMiB: number,
  sidecarMemoryMiB: number,
): { readonly plan: StdioPlan; readonly problems: string[] } {
  const problems: string[] = [];
  if (server.stdio.length === 0 || server.stdio[0] === "")
    problems.push(
      'server.stdio is empty: give the server\'s command line as a list, e.g. ["/nodejs/bin/node", "/opt/server/index.js"]',
    );
  if (server.stdio.some((word) => word.includes("\0")))
    problems.push("server.stdio: an argument holds a NUL byte");
  const names = new Set<string>();
  const name = (variable: string, setting: string) => {
    if (!ENV_NAME.test(variable)) problems.push(`${setting}: "${variable}" is not a variable name`);
    else if (SIDECAR_ONLY_ENV.test(variable) || SIDECAR_PROCESS_ENV.test(variable))
      problems.push(
        `${setting}: ${variable} is the sidecar's own variable in its container, never a child's`,
      );
    else if (names.has(variable)) problems.push(`${setting}: ${variable} is given more than once`);
    names.add(variable);
  };
  for (const variable of Object.keys(server.environment ?? {})) name(variable, "server.environment");
  for (const secret of server.secretEnvironment ?? []) {
    name(secret.name, "server.secretEnvironment");
    if (!secret.secretArn.startsWith("arn:aws"))
      problems.push(
        `server.secretEnvironment: ${secret.name}'s secretArn "${secret.secretArn}" is not an ARN`,
      );
  }
  const spares = server.spares ?? STDIO_SPARES_DEFAULT;
  if (!Number.isInteger(spares) || spares < 0)
    problems.push(`server.spares ${spares} must be a whole number >= 0`);
  const pool = server.pool ?? STDIO_POOL_DEFAULT;
  if (!Number.isInteger(pool) || pool < 0) problems.push(`server.pool ${pool} must be a whole number >= 0`);
  const childMiB = server.childMemory ?? STDIO_CHILD_MEMORY_MIB;
  if (!Number.isInteger(childMiB) || childMiB < 1)
    problems.push(`server.childMemory ${childMiB} must be a whole number of MiB`);
  const memory = stdioMemoryPlan(taskMemoryMiB, sidecarMemoryMiB, childMiB);
  // The spares and the pool are started whatever the sessions: they come off the top.
  const whole = (n: number) => (Number.isInteger(n) ? Math.max(0, n) : 0);
  const others = whole(spares) + whole(pool);
  const maxSessions = server.maxSessions ?? Math.max(0, memory.children - others);
  if (!Number.isInteger(maxSessions) || (server.maxSessions !== undefined && maxSessions < 1))
    problems.push(`server.maxSessions ${maxSessions} must be a whole number >= 1`);
  else if (Number.isInteger(spares) && Number.isInteger(pool) && Number.isInteger(childMiB) && childMiB >= 1)
    problems.push(...stdioMemoryProblems(memory, maxSessions, others));
  return { plan: { kind: "stdio", server, maxSessions, spares, pool, memory }, problems };
}
