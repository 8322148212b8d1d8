// A stdio server in the task: checked and sized. No container of its own: the sidecar runs it as
// its children, inside the sidecar's container, one per session, so the task's memory decides how
// many sessions a task holds (plan/memory.ts). Pure; every problem names its setting.

import type { StdioPlan, StdioServer } from "./containers.ts";
import { STDIO_CHILD_MEMORY_MIB, stdioMemoryPlan, stdioMemoryProblems } from "./memory.ts";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Set in the sidecar's container by the component: a child variable of that name would clash. */
const CONTAINER_OWNED = new Set(["NODE_OPTIONS", "AWS_TOKEN"]);
/** The sidecar's own --stdio-spares default: one child started ahead of need. */
export const STDIO_SPARES_DEFAULT = 1;

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
    else if (CONTAINER_OWNED.has(variable) || variable.startsWith("MCP_SIDECAR_"))
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
  const memory = stdioMemoryPlan(
    taskMemoryMiB,
    sidecarMemoryMiB,
    server.childMemory ?? STDIO_CHILD_MEMORY_MIB,
  );
  const maxSessions = server.maxSessions ?? Math.max(0, memory.children - Math.max(0, spares));
  if (!Number.isInteger(maxSessions) || (server.maxSessions !== undefined && maxSessions < 1))
    problems.push(`server.maxSessions ${maxSessions} must be a whole number >= 1`);
  else problems.push(...stdioMemoryProblems(memory, maxSessions, Math.max(0, spares)));
  return { plan: { kind: "stdio", server, maxSessions, spares, memory }, problems };
}
