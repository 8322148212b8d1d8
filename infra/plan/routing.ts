// Session routing in the task plan: whether a service's sidecars route sessions across its tasks
// (--session-routing), and the labels the policy pack reads to check that any service that can run
// more than one task of a session-ful server does. Pure.

/** Docker labels on the sidecar container: what the policy pack needs to judge the task alone. */
export const LABELS = Object.freeze({
  /** The most tasks the service may run at once (its maxCount). */
  maxTasks: "mcp-sidecar.max-tasks",
  /** `kept` (a 2025-era server with sessions in memory) or `none` (declared stateless). */
  serverSessions: "mcp-sidecar.server-sessions",
});

export interface RoutingInput {
  /** The service's setting; undefined: the default below. */
  readonly sessionRouting: boolean | undefined;
  readonly maxCount: number;
  /** The server keeps no sessions (2026-07-28 only, or a stateless mode). */
  readonly statelessServer: boolean;
  readonly stdio: boolean;
}

/**
 * On by default when more than one task can run a server that keeps sessions: without it, a
 * session's requests that the ALB sends to another task get 404 (docs/scaling.md).
 */
export function sessionRoutingOf(input: RoutingInput): boolean {
  if (input.sessionRouting !== undefined) return input.sessionRouting;
  return !input.stdio && !input.statelessServer && input.maxCount > 1;
}

export function routingProblems(input: RoutingInput): string[] {
  const problems: string[] = [];
  const routing = sessionRoutingOf(input);
  if (input.stdio && routing)
    problems.push("sessionRouting: stdio sessions are not routed across tasks yet (an HTTP server's are)");
  if (input.stdio && !input.statelessServer && input.maxCount > 1)
    problems.push(
      `up to ${input.maxCount} tasks (maxCount, or minCount when maxCount is unset) with a stdio server: its sessions live in one task's children and are not routed across tasks, so a session's requests the load balancer sends to another task would get 404 (keep minCount and maxCount at 1, or declare server.stateless if its clients speak 2026-07-28 only)`,
    );
  if (!input.stdio && !routing && !input.statelessServer && input.maxCount > 1)
    problems.push(
      `sessionRouting is off while up to maxCount ${input.maxCount} tasks run a server that keeps sessions: requests the load balancer sends to another task would get 404 (turn it on, or declare server.stateless)`,
    );
  return problems;
}

/** The sidecar's own environment for routing: the secret by ARN, the task's address, the VPC. */
export function routingEnvironment(routing: {
  readonly sessionSecretArn: string;
  readonly peerCidr: string;
}): Record<string, string> {
  return {
    MCP_SIDECAR_SESSION_ROUTING: "on",
    MCP_SIDECAR_SESSION_SECRET: routing.sessionSecretArn,
    // The task's private address, from the ECS task metadata endpoint v4 (Fargate sets it).
    MCP_SIDECAR_ADVERTISE_URL: "auto",
    MCP_SIDECAR_PEER_CIDRS: routing.peerCidr,
  };
}
