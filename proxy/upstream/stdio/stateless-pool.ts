// 2026-07-28 stateless requests over stdio children: a pool of warm children (--stdio-pool), each
// request on the least busy one, started by the first such request and kept warm from then on. The children speak the 2025-era protocol they know, so the pool
// is an era bridge built from the MCP SDK 2.x on both sides: its HTTP entry (createMcpHandler) and
// Server speak 2026-07-28 to the client (server/discover, the per-request envelope, resultType and
// the list results' cache fields, subscriptions/listen), and its Client speaks to each child (an
// initialize of its own, then requests). Each method is forwarded as it is; the SDK converts.
//
// What a pool cannot give, by construction: per-client server state (each request may reach
// another child), and resource subscriptions (a child's resources/updated needs its own
// resources/subscribe, which no 2026-07-28 request makes): the capability is not advertised.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Client } from "@modelcontextprotocol/client";
import type { McpHttpHandler, Server } from "@modelcontextprotocol/server";
import { ChildTransport } from "./child-transport.ts";
import { fetchRequestOf, writeFetchResponse } from "./fetch-bridge.ts";
import type { StatelessSdk } from "./sdk.ts";
import type { ChildLink } from "./session.ts";

/** The methods forwarded to a child, each with the capability that must be there for it. */
const FORWARDED = [
  ["tools/list", "tools"],
  ["tools/call", "tools"],
  ["resources/list", "resources"],
  ["resources/templates/list", "resources"],
  ["resources/read", "resources"],
  ["prompts/list", "prompts"],
  ["prompts/get", "prompts"],
  ["completion/complete", "completions"],
] as const;

/** The client's own deadline is the client's: the sidecar sets none of its own (setTimeout's most). */
const NO_TIMEOUT_MS = 2_147_483_647;

export interface PoolHooks {
  /** Starts a supervised child (process.ts), its log lines tagged with `id`. */
  readonly start: (id: string) => ChildLink;
  readonly newId: () => string;
  /** A child died before it answered its initialize: it failed to start. */
  readonly startFailed: (description: string) => void;
  /** A child answered its initialize this long after it was started. */
  readonly ready: (ms: number) => void;
  readonly mayStart: () => boolean;
  /** The --secret-env generation a child started now gets. */
  readonly generation: () => number;
  readonly now: () => number;
}

interface Member {
  readonly child: ChildLink;
  readonly client: Client;
  /** The pool's own progress tokens of this child's requests, each to its client's stream. */
  readonly progress: Map<string, (params: Record<string, unknown>) => void>;
  readonly generation: number;
  ready: boolean;
  inFlight: number;
}

type Params = Record<string, unknown> & { _meta?: Record<string, unknown> };

/**
 * The request's own `_meta`, less the 2026-07-28 envelope (the SDK's client writes its own), with
 * the pool's progress token for the client's (two clients may pick the same one).
 */
function childParams(params: Params | undefined, progressToken: string | undefined): Params | undefined {
  const meta = Object.fromEntries(
    Object.entries(params?._meta ?? {}).filter(
      ([key]) => !key.startsWith("io.modelcontextprotocol/") && key !== "progressToken",
    ),
  );
  if (progressToken !== undefined) meta.progressToken = progressToken;
  return { ...params, _meta: meta };
}

export class StatelessPool {
  readonly #size: number;
  readonly #sdk: StatelessSdk;
  readonly #hooks: PoolHooks;
  readonly #members = new Set<Member>();
  readonly #handler: McpHttpHandler;
  #closed = false;
  #tokens = 0;
  /** Started on the first stateless request: a task whose clients all keep sessions pays nothing. */
  #wanted = false;
  /** Requests waiting for a child to be ready (the pool is booting, or refilling). */
  readonly #waiting = new Set<() => void>();

  constructor(size: number, sdk: StatelessSdk, hooks: PoolHooks) {
    this.#size = size;
    this.#sdk = sdk;
    this.#hooks = hooks;
    // A fresh Server per request (the revision is stateless), bound to the least busy child.
    this.#handler = sdk.createMcpHandler(() => this.#serverFor(this.#pick()), {
      legacy: "reject",
      onerror: () => {},
    });
  }

  /** Children started or starting. */
  get size(): number {
    return this.#members.size;
  }

  /** Whether a child can take a request now. */
  get ready(): boolean {
    for (const member of this.#members) if (this.#usable(member)) return true;
    return false;
  }

  /** Ready, and started with the --secret-env values of now (not before the first load or a rotation). */
  #usable(member: Member): boolean {
    return member.ready && member.generation === this.#hooks.generation();
  }

  /**
   * Resolves true once a child can take a request, false after `timeoutMs` or at close: a request
   * that arrives while the pool boots waits for it rather than failing.
   */
  whenReady(timeoutMs: number): Promise<boolean> {
    this.#wanted = true;
    if (this.ready) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    // Children of an older generation make room for new ones now, not at the next tick.
    this.retireStale(this.#hooks.generation());
    this.fill();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#waiting.delete(wake);
        resolve(this.ready);
      };
      // A child that became ready with values since rotated makes way for one with the new ones.
      const wake = () => {
        if (this.ready || this.#closed) finish();
        else {
          this.retireStale(this.#hooks.generation());
          this.fill();
        }
      };
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      this.#waiting.add(wake);
    });
  }

  /** Starts children up to the pool's size (once wanted, after a child died, once starts may resume). */
  fill(): void {
    while (this.#wanted && !this.#closed && this.#members.size < this.#size && this.#hooks.mayStart())
      this.#startMember();
  }

  /** Serves one 2026-07-28 request (its body read already); `end` ends a listen stream (the drain). */
  serve(req: IncomingMessage, res: ServerResponse, body: Buffer): { done: Promise<void>; end: () => void } {
    const { request, abort } = fetchRequestOf(req, res, body);
    const done = this.#handler.fetch(request).then((response) => writeFetchResponse(response, res));
    return { done, end: abort };
  }

  /** Stops every child (each as a group); in-flight requests have finished or are cut. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of [...this.#waiting]) wake();
    await this.#handler.close().catch(() => {});
    await Promise.allSettled([...this.#members].map((member) => member.child.stop()));
    this.#members.clear();
  }

  /**
   * After a --secret-env rotation: children with the old values take no new request, and each is
   * stopped once its requests are done (its replacement starts with the new values).
   */
  retireStale(generation: number): void {
    for (const member of this.#members) {
      if (member.generation === generation) continue;
      member.ready = false;
      if (member.inFlight === 0) {
        this.#members.delete(member);
        void member.child.stop();
      }
    }
  }

  #startMember(): void {
    const startedAt = this.#hooks.now();
    const child = this.#hooks.start(this.#hooks.newId());
    const transport = new ChildTransport(child);
    const client = new this.#sdk.Client({ name: "mcp-sidecar", version: "1" });
    const member: Member = {
      child,
      client,
      progress: new Map(),
      generation: this.#hooks.generation(),
      ready: false,
      inFlight: 0,
    };
    transport.onprogress = (token, params) => {
      const relay = member.progress.get(token);
      relay?.(params);
      return relay !== undefined;
    };
    this.#members.add(member);
    const notify = this.#handler.notify;
    client.setNotificationHandler("notifications/tools/list_changed", () => notify.toolsChanged());
    client.setNotificationHandler("notifications/prompts/list_changed", () => notify.promptsChanged());
    client.setNotificationHandler("notifications/resources/list_changed", () => notify.resourcesChanged());
    let answered = false;
    transport.onexited = (description) => {
      const retired = !this.#members.delete(member);
      if (!answered && !retired) this.#hooks.startFailed(description);
      this.fill();
    };
    client.connect(transport).then(
      () => {
        answered = true;
        member.ready = this.#members.has(member);
        this.#hooks.ready(this.#hooks.now() - startedAt);
        for (const wake of [...this.#waiting]) wake();
      },
      () => {
        // Its exit (reported by the transport) says why; a child that answered wrongly is stopped.
        void child.stop();
      },
    );
  }

  #pick(): Member | undefined {
    let best: Member | undefined;
    for (const member of this.#members)
      if (this.#usable(member) && (best === undefined || member.inFlight < best.inFlight)) best = member;
    return best;
  }

  #serverFor(member: Member | undefined): Server {
    const capabilities = { ...(member?.client.getServerCapabilities() ?? {}) };
    if (capabilities.resources !== undefined)
      capabilities.resources = { ...capabilities.resources, subscribe: false };
    const info = member?.client.getServerVersion() ?? { name: "stdio", version: "0" };
    const instructions = member?.client.getInstructions();
    const server = new this.#sdk.Server(info, { capabilities, ...(instructions ? { instructions } : {}) });
    if (member === undefined) return server;
    for (const [method, capability] of FORWARDED) {
      if (capabilities[capability] === undefined) continue;
      server.setRequestHandler(method, ((request: { params?: Params }, ctx: ForwardContext) =>
        this.#forward(member, method, request.params, ctx)) as never);
    }
    return server;
  }

  async #forward(member: Member, method: string, params: Params | undefined, ctx: ForwardContext) {
    member.inFlight++;
    const clientToken = ctx.mcpReq._meta?.progressToken;
    const token = clientToken === undefined ? undefined : `mcp-sidecar-${++this.#tokens}`;
    // Progress goes out before the answer: the answer ends the request's stream.
    const notified: Promise<void>[] = [];
    if (token !== undefined)
      member.progress.set(token, (progress) =>
        notified.push(
          ctx.mcpReq
            .notify({ method: "notifications/progress", params: { ...progress, progressToken: clientToken } })
            .catch(() => {}),
        ),
      );
    try {
      const result: unknown = await member.client.request(
        { method, params: childParams(params, token) } as never,
        { signal: ctx.mcpReq.signal, timeout: NO_TIMEOUT_MS },
      );
      await Promise.all(notified);
      return result;
    } finally {
      member.inFlight--;
      if (token !== undefined) member.progress.delete(token);
    }
  }
}

/** What a forwarding handler uses of the SDK's request context. */
interface ForwardContext {
  readonly mcpReq: {
    readonly signal: AbortSignal;
    readonly _meta?: { readonly progressToken?: string | number };
    notify(notification: { method: string; params: Record<string, unknown> }): Promise<void>;
  };
}
