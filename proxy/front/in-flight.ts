// What is in flight, for the drain: the exchanges the upstream runs, and the answers the front door
// writes itself (its own endpoints, 401s, 503s while draining). The process waits for both, so no
// answer is reset by the exit. One entry per client response.

import type { ServerResponse } from "node:http";
import type { InFlightExchange } from "../upstream/upstream.ts";

export class InFlight {
  readonly #entries = new Map<ServerResponse, InFlightExchange | null>();
  readonly #changed: (count: number) => void;

  /** `changed` hears every change of the count (the drain ends when it reaches 0). */
  constructor(changed: (count: number) => void) {
    this.#changed = changed;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Registers (or replaces) what answers `res`: an exchange, or null for the front door itself. */
  set(res: ServerResponse, exchange: InFlightExchange | null): void {
    const size = this.#entries.size;
    this.#entries.set(res, exchange);
    if (this.#entries.size !== size) this.#changed(this.#entries.size);
  }

  delete(res: ServerResponse): void {
    if (this.#entries.delete(res)) this.#changed(this.#entries.size);
  }

  /** An answer the front door writes itself: in flight until its response is closed. */
  trackAnswer(res: ServerResponse): void {
    this.set(res, null);
    res.once("close", () => this.delete(res));
  }

  /** Answers not begun yet will close their connection: the client's next request goes elsewhere. */
  closeConnectionsAfterAnswers(): void {
    for (const res of this.#entries.keys()) if (!res.headersSent) res.setHeader("connection", "close");
  }

  closeEndless(retryMs: number): void {
    for (const exchange of [...this.#entries.values()]) {
      if (exchange?.kind === "endless") exchange.closeEndless(retryMs);
    }
  }

  /** Cuts every exchange, `report`ing each first. The front door's own answers end with the process. */
  cut(report: (exchange: InFlightExchange) => void): void {
    for (const exchange of [...this.#entries.values()]) {
      if (exchange === null) continue;
      report(exchange);
      exchange.cut();
    }
  }
}
