// Children started ahead of need, so that a new session's initialize is served by a process that
// has already booted (for a Node server, about 200 ms of every initialize: measured in
// test/stdio.test.ts). A spare has a session id chosen at spawn (so its log lines name the session
// it will serve) and serves exactly one session: it leaves the pool when taken and is never put
// back. A spare started with secrets that have since rotated is stopped, not handed out.

import type { ChildLink } from "./session.ts";

export interface Spare {
  readonly sessionId: string;
  readonly child: ChildLink;
  /** The --secret-env generation its environment was built from. */
  readonly generation: number;
}

export interface SparePoolHooks {
  /** Starts a child for `sessionId` with the environment of now; returns it and its generation. */
  readonly start: (sessionId: string) => Spare;
  /** The current --secret-env generation. */
  readonly generation: () => number;
  /** A spare died while waiting: it never answered, so it failed to start. */
  readonly died: (description: string) => void;
  /** Whether starting more is allowed now (not while starts back off, not once draining). */
  readonly mayStart: () => boolean;
  readonly newSessionId: () => string;
}

export class SparePool {
  readonly #size: number;
  readonly #hooks: SparePoolHooks;
  readonly #spares: Spare[] = [];

  constructor(size: number, hooks: SparePoolHooks) {
    this.#size = size;
    this.#hooks = hooks;
  }

  get size(): number {
    return this.#spares.length;
  }

  /** A spare of the current generation, if one is ready (the pool refills behind it). */
  take(): Spare | undefined {
    this.#discardStale();
    const spare = this.#spares.shift();
    if (spare !== undefined) spare.child.onexit = undefined;
    this.refill();
    return spare;
  }

  refill(): void {
    this.#discardStale();
    while (this.#spares.length < this.#size && this.#hooks.mayStart()) {
      const spare = this.#hooks.start(this.#hooks.newSessionId());
      spare.child.onexit = (description) => {
        const index = this.#spares.indexOf(spare);
        if (index === -1) return;
        this.#spares.splice(index, 1);
        this.#hooks.died(description);
      };
      this.#spares.push(spare);
    }
  }

  /** Stops every spare (the drain, or a rotation). */
  stopAll(): Promise<unknown> {
    const spares = this.#spares.splice(0);
    return Promise.allSettled(
      spares.map((spare) => {
        spare.child.onexit = undefined;
        return spare.child.stop();
      }),
    );
  }

  #discardStale(): void {
    const generation = this.#hooks.generation();
    for (const spare of [...this.#spares]) {
      if (spare.generation === generation) continue;
      this.#spares.splice(this.#spares.indexOf(spare), 1);
      spare.child.onexit = undefined;
      void spare.child.stop();
    }
  }
}
