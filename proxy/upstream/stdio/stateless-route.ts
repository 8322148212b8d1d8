// How the stdio upstream serves a 2026-07-28 stateless request: on the pool (stateless-pool.ts),
// made with the first request that needs one, since the MCP SDK 2.x it runs on costs memory a task
// whose clients all keep sessions should not pay (the stdio bench's RSS under its session load:
// 164 MB with the SDK 2.x loaded at start, 154 MB without); a request waits (bounded) while the
// pool's children boot, and fails, naming why, while they cannot start.

import { randomUUID } from "node:crypto";
import { SIDECAR_ERRORS } from "../../errors.ts";
import type { StdioExchange } from "./exchange.ts";
import { loadStatelessSdk, type StdioSdk } from "./sdk.ts";
import type { ChildLink } from "./session.ts";
import type { StartBackoff } from "./start-backoff.ts";
import { StatelessPool } from "./stateless-pool.ts";

/** How long a stateless request waits for a pool child to boot (a Node server: under a second). */
const POOL_READY_WAIT_MS = 10_000;

export interface StatelessRouteParts {
  readonly size: number;
  readonly sdk: Promise<StdioSdk>;
  readonly startChild: (id: string, sdk: StdioSdk) => ChildLink;
  readonly backoff: StartBackoff;
  readonly startFailed: (description: string) => void;
  readonly ready: (ms: number) => void;
  readonly closed: () => boolean;
  readonly generation: () => number;
  readonly now: () => number;
}

export class StatelessRoute {
  readonly #parts: StatelessRouteParts;
  #made: Promise<StatelessPool | undefined> | undefined;
  #pool: StatelessPool | undefined;
  #problem: string | undefined;

  constructor(parts: StatelessRouteParts) {
    this.#parts = parts;
  }

  /** The pool, once made (for ticks, metrics and the drain). */
  get pool(): StatelessPool | undefined {
    return this.#pool;
  }

  /** Why the pool cannot be made (the SDK 2.x did not load), for /ready. */
  get problem(): string | undefined {
    return this.#problem;
  }

  async serve(exchange: StdioExchange, body: Buffer): Promise<void> {
    this.#made ??= this.#make();
    const pool = await this.#made;
    if (pool === undefined) {
      exchange.refuse(SIDECAR_ERRORS.stdioStartFailed, this.#problem ?? "the stateless pool cannot be made");
      return;
    }
    const { backoff } = this.#parts;
    // While its children boot, a request waits for one (bounded); while they fail to start, it fails.
    if (!(await pool.whenReady(backoff.reason === undefined ? POOL_READY_WAIT_MS : 0))) {
      const why = backoff.reason ?? `none started within ${POOL_READY_WAIT_MS / 1000} s`;
      exchange.refuse(
        SIDECAR_ERRORS.stdioStartFailed,
        `no MCP server process of the stateless pool is ready (${why})`,
        {
          retryAfterMs: Math.max(backoff.left(), 1000),
        },
      );
      return;
    }
    const { done, end } = pool.serve(exchange.request.req, exchange.request.res, body);
    exchange.endStream = end;
    await done;
  }

  async #make(): Promise<StatelessPool | undefined> {
    const parts = this.#parts;
    try {
      const [sdk, stateless] = await Promise.all([parts.sdk, loadStatelessSdk()]);
      this.#pool = new StatelessPool(parts.size, stateless, {
        start: (id) => parts.startChild(id, sdk),
        newId: randomUUID,
        startFailed: parts.startFailed,
        ready: parts.ready,
        mayStart: () => !parts.closed() && parts.backoff.left() === 0,
        generation: parts.generation,
        now: parts.now,
      });
      return this.#pool;
    } catch (error) {
      this.#problem = `the MCP SDK 2.x (for --stdio-pool) cannot be loaded (${(error as Error).message})`;
      return undefined;
    }
  }
}
