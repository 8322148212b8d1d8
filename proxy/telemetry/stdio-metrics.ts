// The stdio upstream's metrics: children alive, started, exited by cause, how long a child takes
// to answer its first request, and sessions by state. Registered only with --stdio.

import { Counter, Gauge, Histogram, type Registry } from "../deps.ts";

export interface StdioCounts {
  readonly starting: number;
  readonly active: number;
  /** Started ahead of need (--stdio-spares), not yet serving a session. */
  readonly spare: number;
  /** Serving 2026-07-28 stateless requests (--stdio-pool), started or starting. */
  readonly pool: number;
}

export class StdioMetrics {
  readonly started: Counter;
  readonly exited: Counter<"cause">;
  readonly startSeconds: Histogram;
  readonly sessionsEnded: Counter<"reason">;

  constructor(registry: Registry, counts: () => StdioCounts) {
    const registers = [registry];
    new Gauge({
      name: "mcp_sidecar_stdio_children",
      help: "stdio server processes alive: one per session (starting or active), the spares, and the stateless pool's.",
      registers,
      collect() {
        const c = counts();
        this.set(c.starting + c.active + c.spare + c.pool);
      },
    });
    new Gauge({
      name: "mcp_sidecar_stdio_sessions",
      help: "stdio sessions by state: starting (initialize not answered yet), active; spare children waiting for one; and pool children serving 2026-07-28 stateless requests.",
      labelNames: ["state"],
      registers,
      collect() {
        const c = counts();
        this.set({ state: "starting" }, c.starting);
        this.set({ state: "active" }, c.active);
        this.set({ state: "spare" }, c.spare);
        this.set({ state: "pool" }, c.pool);
      },
    });
    this.started = new Counter({
      name: "mcp_sidecar_stdio_children_started_total",
      help: "stdio server processes started.",
      registers,
    });
    this.exited = new Counter({
      name: "mcp_sidecar_stdio_children_exited_total",
      help: "stdio server processes gone, by cause: stopped (by the sidecar), exited, crashed (non-zero exit), killed (a signal the sidecar did not send; SIGKILL is often the OOM killer), start_failed.",
      labelNames: ["cause"],
      registers,
    });
    this.startSeconds = new Histogram({
      name: "mcp_sidecar_stdio_child_start_seconds",
      help: "From starting a stdio server process to its first answer (to initialize).",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.sessionsEnded = new Counter({
      name: "mcp_sidecar_stdio_sessions_ended_total",
      help: "stdio sessions ended, by reason: deleted, disconnected (a legacy stream closed), idle, child_exited, rolled, stopped, refused (the SDK refused the initialize: a bad Accept or Content-Type).",
      labelNames: ["reason"],
      registers,
    });
  }
}
