// The headers sidecars of one deployment speak between themselves (never to clients or upstreams).

/**
 * On a request one sidecar forwards to the session's owner: the forwarder's instance id. A request
 * carrying it is never forwarded again (no loops); it is dropped before any upstream sees it.
 */
export const FORWARDED_BY_HEADER = "mcp-sidecar-forwarded-by";

/**
 * On the owner's 421 answer to a forwarded request it will not serve (it drains, or is not the
 * owner): `moved`, and the forwarder continues the session itself.
 */
export const SESSION_MOVED_HEADER = "mcp-sidecar-session";
export const SESSION_MOVED = "moved";
