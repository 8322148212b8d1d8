// Every error the sidecar answers itself, with its HTTP status and a stable code. A code is API: it
// appears in response bodies and logs, the README lists each, and a test checks they are unique and
// documented. Never reuse a retired code.

export interface SidecarErrorSpec {
  readonly code: string;
  readonly status: number;
  readonly description: string;
}

function spec(code: string, status: number, description: string): SidecarErrorSpec {
  return Object.freeze({ code, status, description });
}

export const SIDECAR_ERRORS = Object.freeze({
  upstreamUnreachable: spec(
    "MCP_SIDECAR_UPSTREAM_UNREACHABLE",
    502,
    "The upstream refused, reset or closed the connection before answering.",
  ),
  upstreamConnectTimeout: spec(
    "MCP_SIDECAR_UPSTREAM_CONNECT_TIMEOUT",
    504,
    "No connection to the upstream within --upstream-connect-timeout.",
  ),
  upstreamHeadersTimeout: spec(
    "MCP_SIDECAR_UPSTREAM_HEADERS_TIMEOUT",
    504,
    "The upstream did not start its response within --upstream-headers-timeout.",
  ),
  unauthorized: spec(
    "MCP_SIDECAR_UNAUTHORIZED",
    401,
    "--auth-secret is set and the request has no Authorization: Bearer key, or one that matches no current or previous version.",
  ),
  bodyTooLarge: spec("MCP_SIDECAR_BODY_TOO_LARGE", 413, "The request body is larger than --max-body-size."),
  tooManyHeaders: spec(
    "MCP_SIDECAR_TOO_MANY_HEADERS",
    431,
    "The request has more header lines than --max-header-count.",
  ),
  draining: spec(
    "MCP_SIDECAR_DRAINING",
    503,
    "The sidecar is shutting down; retry on another instance (the answer carries Retry-After and Connection: close).",
  ),
  badRequestTarget: spec(
    "MCP_SIDECAR_BAD_REQUEST_TARGET",
    400,
    "The request target is not a path (absolute-form or asterisk-form).",
  ),
  methodNotAllowed: spec(
    "MCP_SIDECAR_METHOD_NOT_ALLOWED",
    405,
    "The sidecar's own endpoints answer GET and HEAD only.",
  ),
  stdioStartFailed: spec(
    "MCP_SIDECAR_STDIO_START_FAILED",
    502,
    "The stdio MCP server could not be started (bad command, or it exited at once); the message names the command and its exit status.",
  ),
  stdioChildExited: spec(
    "MCP_SIDECAR_STDIO_CHILD_EXITED",
    502,
    "The stdio MCP server's process exited or was killed while the request waited on it; its session is gone (the client re-initializes).",
  ),
  tooManySessions: spec(
    "MCP_SIDECAR_TOO_MANY_SESSIONS",
    503,
    "--max-sessions stdio sessions are open; the answer carries Retry-After.",
  ),
  sessionNotFound: spec(
    "MCP_SIDECAR_SESSION_NOT_FOUND",
    404,
    "No session has this Mcp-Session-Id: a stdio session that ended (DELETE, idle, its process exited), or with --session-routing a token this deployment did not issue, altered, or whose session cannot be continued; the client re-initializes.",
  ),
  sessionMoved: spec(
    "MCP_SIDECAR_SESSION_MOVED",
    421,
    "With --session-routing, to a request another task's sidecar forwarded: this task does not own the session (any more), or is draining; the forwarding sidecar continues the session itself (the answer carries Mcp-Sidecar-Session: moved). Clients never see it.",
  ),
  callCut: spec(
    "MCP_SIDECAR_CALL_CUT",
    503,
    "With --session-routing: the session's owner cut a forwarded call at its drain timeout (or a forced stop) before answering; the call may have run, so it is not run again elsewhere.",
  ),
  sessionKeysUnavailable: spec(
    "MCP_SIDECAR_SESSION_KEYS_UNAVAILABLE",
    503,
    "With --session-routing, the --session-secret has not been loaded from the agent yet, so no session token can be sealed or opened (/ready says so too); the answer carries Retry-After.",
  ),
  sessionNotContinued: spec(
    "MCP_SIDECAR_SESSION_NOT_CONTINUED",
    502,
    "With --session-routing and --session-continuity replay, the session's owner is gone and re-creating the session on this task failed (the message says why); the token stays valid, so a retry may succeed.",
  ),
  sessionRequired: spec(
    "MCP_SIDECAR_SESSION_REQUIRED",
    400,
    "A request other than initialize came without an Mcp-Session-Id to a stdio server.",
  ),
  upgradeNotSupported: spec(
    "MCP_SIDECAR_UPGRADE_NOT_SUPPORTED",
    501,
    "Protocol upgrades (WebSocket) are not forwarded; MCP uses plain HTTP.",
  ),
} satisfies Record<string, SidecarErrorSpec>);

export type SidecarErrorName = keyof typeof SIDECAR_ERRORS;
