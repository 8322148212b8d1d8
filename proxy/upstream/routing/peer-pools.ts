// Keep-alive connections to the other tasks' sidecars, one undici Pool per owner origin, made on
// first use. The origins come from tokens (sealed, and checked against --peer-cidrs before they get
// here), so there are as many as tasks ever ran; a pool idle for long is closed.

import { Pool } from "../../deps.ts";
import { LegacySessions } from "../../protocol/legacy-sse.ts";
import type { HttpExchangeSettings } from "../http/exchange-settings.ts";

export interface PeerPoolSettings {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly sseKeepaliveMs: number;
  readonly maxBodyBytes: number;
}

/** A pool unused this long is closed (tasks are replaced on every deploy; their addresses stay dead). */
const IDLE_CLOSE_MS = 5 * 60_000;

interface Peer {
  readonly pool: Pool;
  readonly settings: HttpExchangeSettings;
  lastUsed: number;
}

export class PeerPools {
  readonly #settings: PeerPoolSettings;
  readonly #peers = new Map<string, Peer>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(settings: PeerPoolSettings) {
    this.#settings = settings;
  }

  /** The exchange settings for forwarding to `origin`. */
  settingsFor(origin: string): HttpExchangeSettings {
    let peer = this.#peers.get(origin);
    if (peer === undefined) {
      const pool = new Pool(origin, {
        pipelining: 1,
        connect: { timeout: this.#settings.connectTimeoutMs },
        headersTimeout: this.#settings.headersTimeoutMs,
        bodyTimeout: 0,
      });
      peer = {
        pool,
        lastUsed: 0,
        settings: {
          dispatcher: pool,
          sseKeepaliveMs: this.#settings.sseKeepaliveMs,
          maxBodyBytes: this.#settings.maxBodyBytes,
          upstreamHeadersTimeoutMs: this.#settings.headersTimeoutMs,
          onRefused: () => {},
          legacy: new LegacySessions(),
        },
      };
      this.#peers.set(origin, peer);
      this.#sweeper ??= setInterval(() => this.#sweep(), IDLE_CLOSE_MS).unref();
    }
    peer.lastUsed = Date.now();
    return peer.settings;
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const peer of this.#peers.values()) void peer.pool.destroy().catch(() => {});
    this.#peers.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [origin, peer] of this.#peers) {
      const stats = peer.pool.stats;
      if (now - peer.lastUsed > IDLE_CLOSE_MS && stats.running === 0 && stats.pending === 0) {
        void peer.pool.close().catch(() => {});
        this.#peers.delete(origin);
      }
    }
  }
}
