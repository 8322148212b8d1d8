// Header rewriting for a transparent proxy (RFC 9110 §7.6.1). Pure: flat [name, value, ...] arrays
// in, flat arrays out, names with their original case, duplicates kept in order.

/**
 * Connection-specific headers that never cross a proxy, plus `expect` (Node answers 100-continue).
 * Every `proxy-*` header (proxy-connection, proxy-authorization, ...) is dropped by its prefix.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

/** Extra hop-by-hop names a `Connection: a, b` header declares. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  // "host" can never become hop-by-hop: it is replaced anyway.
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // Length first: most headers are not 10 characters long, and lowercasing each one costs.
    if (name.length !== 10 || name.toLowerCase() !== "connection") continue;
    for (const token of (raw[i + 1] as string).split(",")) {
      const declared = token.trim().toLowerCase();
      if (!declared || declared === "close" || declared === "keep-alive" || declared === "host") continue;
      if (tokens === undefined) tokens = new Set();
      tokens.add(declared);
    }
  }
  return tokens;
}

export interface ForwardedFor {
  /** The client's address as the sidecar saw it. */
  readonly remoteAddress: string | undefined;
  /** `http` or `https`: how the client reached the sidecar. */
  readonly proto: string;
}

/** Request headers the sidecar itself acts on, picked up in the same pass. */
export interface RequestHeadInfo {
  readonly requestId: string | undefined;
  readonly sessionId: string | undefined;
  /** 2026-07-28 routing headers, still encoded (see protocol/jsonrpc.ts decodeMcpHeaderValue). */
  readonly mcpMethod: string | undefined;
  readonly mcpName: string | undefined;
  readonly accept: string | undefined;
  readonly contentType: string | undefined;
  readonly contentLength: string | undefined;
  readonly chunked: boolean;
  /** The client's Authorization, picked up whether or not it is forwarded. */
  readonly authorization: string | undefined;
}

export interface UpstreamRequestHead {
  /** Flat [name, value, ...] for undici. */
  readonly headers: string[];
  readonly info: RequestHeadInfo;
}

/**
 * Request headers as the upstream should see them: hop-by-hop removed, `Host` set to the upstream's
 * own (servers bound to 127.0.0.1 reject any other Host with 403), `X-Forwarded-For` appended to, and
 * `X-Forwarded-Proto`/`-Host` kept when an earlier proxy (an ALB) set them, else set from this hop.
 * Every other header, MCP's included, passes byte for byte. One pass over the raw headers.
 */
export function prepareUpstreamRequest(
  raw: readonly string[],
  upstreamHost: string,
  forwarded: ForwardedFor,
  /** Lower-case names the sidecar consumes or sets itself (its auth header, injected headers). */
  drop?: ReadonlySet<string>,
): UpstreamRequestHead {
  const tokens = connectionTokens(raw);
  const headers: string[] = ["host", upstreamHost];
  let forwardedFor: string | undefined;
  let hasProto = false;
  let hasForwardedHost = false;
  let clientHost: string | undefined;
  let requestId: string | undefined;
  let sessionId: string | undefined;
  let mcpMethod: string | undefined;
  let mcpName: string | undefined;
  let accept: string | undefined;
  let contentType: string | undefined;
  let contentLength: string | undefined;
  let authorization: string | undefined;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        // Becomes X-Forwarded-Host when no earlier proxy set one.
        clientHost ??= value;
        continue;
      case "transfer-encoding":
        chunked = true;
        continue;
      case "x-request-id":
        requestId ??= value;
        break;
      case "mcp-session-id":
        sessionId ??= value;
        break;
      case "mcp-method":
        mcpMethod ??= value;
        break;
      case "mcp-name":
        mcpName ??= value;
        break;
      case "accept":
        accept = accept === undefined ? value : `${accept}, ${value}`;
        break;
      case "content-type":
        contentType ??= value;
        break;
      case "content-length":
        contentLength ??= value;
        break;
      case "authorization":
        authorization ??= value;
        break;
    }
    // Hop-by-hop: the fixed set, every Proxy-* (and httpoxy's Proxy), whatever Connection names.
    if (
      HOP_BY_HOP.has(lower) ||
      lower === "proxy" ||
      lower.startsWith("proxy-") ||
      tokens?.has(lower) ||
      drop?.has(lower)
    ) {
      continue;
    }
    if (lower === "x-forwarded-for") {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (lower === "x-forwarded-proto") hasProto = true;
    else if (lower === "x-forwarded-host") hasForwardedHost = true;
    headers.push(name, value);
  }
  const remote = forwarded.remoteAddress ?? "unknown";
  headers.push("x-forwarded-for", forwardedFor === undefined ? remote : `${forwardedFor}, ${remote}`);
  if (!hasProto) headers.push("x-forwarded-proto", forwarded.proto);
  if (!hasForwardedHost && clientHost !== undefined) headers.push("x-forwarded-host", clientHost);
  return {
    headers,
    info: {
      requestId,
      sessionId,
      mcpMethod,
      mcpName,
      accept,
      contentType,
      contentLength,
      chunked,
      authorization,
    },
  };
}

export interface ResponseHeaderSummary {
  /** The flat array to hand to `res.writeHead`. */
  readonly headers: string[];
  readonly eventStream: boolean;
}

/** Upstream response headers for the client: hop-by-hop removed, the rest unchanged. */
export function clientResponseHeaders(raw: readonly (Buffer | string)[]): ResponseHeaderSummary {
  const strings: string[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const item = raw[i] as Buffer | string;
    strings[i] = typeof item === "string" ? item : item.toString("latin1");
  }
  const tokens = connectionTokens(strings);
  const headers: string[] = [];
  let eventStream = false;
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower.startsWith("proxy-") || tokens?.has(lower)) continue;
    const value = strings[i + 1] as string;
    if (lower === "content-type" && value.toLowerCase().startsWith("text/event-stream")) eventStream = true;
    headers.push(name, value);
  }
  return { headers, eventStream };
}

/**
 * The request target without its query: what logs and routing see. Legacy SSE carries its session
 * id in the query, so it stays out of every log line.
 */
export function pathOf(url: string | undefined): string {
  const target = url ?? "/";
  const query = target.indexOf("?");
  return query === -1 ? target : target.slice(0, query);
}

/** What a request id may look like to be passed on: anything else is replaced. */
const REQUEST_ID_PATTERN = /^[\w.:@/+=-]{1,128}$/;

/**
 * The request id of an exchange: the client's X-Request-Id when it is usable, else `fresh()`, which
 * then replaces the client's header in `headers`, so the upstream and the logs see the same id.
 */
export function ensureRequestId(
  headers: string[],
  clientId: string | undefined,
  fresh: () => string,
): string {
  if (clientId !== undefined && REQUEST_ID_PATTERN.test(clientId)) return clientId;
  const id = fresh();
  if (clientId !== undefined) {
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if ((headers[i] as string).toLowerCase() === "x-request-id") headers.splice(i, 2);
    }
  }
  headers.push("x-request-id", id);
  return id;
}

/**
 * Sets header `lowerName` in a flat [name, value, ...] array, in place: replaces its first value and
 * drops any other, appends it when absent; `value` undefined removes it altogether.
 */
export function setHeader(headers: string[], lowerName: string, value: string | undefined): void {
  let set = value === undefined;
  for (let i = 0; i < headers.length; ) {
    const name = headers[i] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) {
      if (!set) {
        headers[i + 1] = value as string;
        set = true;
        i += 2;
        continue;
      }
      headers.splice(i, 2);
      continue;
    }
    i += 2;
  }
  if (!set) headers.push(lowerName, value as string);
}

/** The first value of header `lowerName` in a flat [name, value, ...] array. */
export function headerValue(headers: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2)
    if ((headers[i] as string).toLowerCase() === lowerName) return headers[i + 1];
  return undefined;
}
