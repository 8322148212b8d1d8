// A StdioSession for tests that hand the child's messages in themselves (the ChildLink interface).

import type { StdioSdk } from "../../proxy/upstream/stdio/sdk.ts";
import { type ChildLink, StdioSession } from "../../proxy/upstream/stdio/session.ts";

/** A session over `link` (the child's side, answered by the test) with the options a test needs. */
export function sessionOver(link: ChildLink, sdk: StdioSdk, sessionId: string): StdioSession {
  return new StdioSession(link, {
    sdk,
    keepAliveMs: 0,
    maxBodyBytes: 1 << 20,
    now: () => 0,
    newSessionId: () => sessionId,
    initialized: () => {},
    ended: () => {},
  });
}
