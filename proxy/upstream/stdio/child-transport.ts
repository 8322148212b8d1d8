// A child process as the MCP SDK 2.x client's transport: the pool's children are spoken to by the
// SDK's own Client (in its 2025-era mode), so the sidecar writes no protocol of its own for them.
// The child itself is the same supervised process a session gets (process.ts).

import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client";
import type { ChildLink } from "./session.ts";

export class ChildTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  /** The child has exited; `description` says how. */
  onexited?: (description: string) => void;
  /**
   * Progress the pool relays itself, by its own token, before anything after it reaches the SDK
   * client (true: taken). The client would hand it to an onprogress callback later than the
   * answer that follows it, and the answer ends the request's stream.
   */
  onprogress?: (token: string, params: Record<string, unknown>) => boolean;
  readonly #child: ChildLink;

  constructor(child: ChildLink) {
    this.#child = child;
  }

  async start(): Promise<void> {
    this.#child.onmessage = (message) => {
      const m = message as { method?: string; params?: { progressToken?: unknown } };
      const token = m.method === "notifications/progress" ? m.params?.progressToken : undefined;
      if (typeof token === "string" && this.onprogress?.(token, m.params as Record<string, unknown>)) return;
      this.onmessage?.(message as JSONRPCMessage);
    };
    this.#child.onexit = (description) => {
      this.onclose?.();
      this.onexited?.(description);
    };
  }

  async send(message: JSONRPCMessage): Promise<void> {
    // SDK 1.x and 2.x JSON-RPC messages are the same on the wire.
    if (!this.#child.send(message as Parameters<ChildLink["send"]>[0]))
      throw new Error("the MCP server process is gone");
  }

  async close(): Promise<void> {
    await this.#child.stop();
  }
}
