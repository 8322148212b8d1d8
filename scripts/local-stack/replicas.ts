// `npm start -- --replicas N`: the local stack shaped like N ECS tasks behind an ALB. Each "task" is
// a reference server and a sidecar on its own loopback address (127.0.0.2, .3, ...; the same port,
// as tasks have), with session routing on; HAProxy from Debian balances every request round-robin
// with no stickiness, as the ALB does, on the stack's MCP port. Pure: what to start, and how.

export const MAX_REPLICAS = 5;

export interface Replica {
  readonly index: number;
  /** The task's own address: its server and its sidecar listen there, the sidecar advertises it. */
  readonly address: string;
}

export function replicasOf(count: number): Replica[] {
  return Array.from({ length: count }, (_, index) => ({ index, address: `127.0.0.${2 + index}` }));
}

/** The sidecar flags that make a replica route sessions (docs/scaling.md). */
export function routingFlags(replica: Replica, sessionSecret: string): string[] {
  return [
    ...["--session-routing", "on", "--session-secret", sessionSecret],
    ...["--advertise-url", `http://${replica.address}`, "--peer-cidrs", "127.0.0.0/8"],
  ];
}

/** HAProxy's configuration: round-robin per request (http-server-close), no stickiness. */
export function haproxyConfig(port: number, sidecarPort: number, replicas: readonly Replica[]): string {
  return [
    "defaults",
    "  mode http",
    "  timeout connect 2s",
    // Above the sidecar's SSE keepalive (15 s), like the ALB's idle timeout, so streams stay open.
    "  timeout client 120s",
    "  timeout server 120s",
    "  option http-server-close",
    "frontend mcp",
    `  bind 127.0.0.1:${port}`,
    "  default_backend tasks",
    "backend tasks",
    "  balance roundrobin",
    "  option httpchk GET /ready",
    ...replicas.map((r) => `  server task-${r.index + 1} ${r.address}:${sidecarPort} check inter 2s`),
    "",
  ].join("\n");
}
