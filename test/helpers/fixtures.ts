// Shared per-file fixtures: one scriptable upstream for the file, and everything a test started
// (sidecars, emulators, processes) stopped after each test.
import type { RequestListener } from "node:http";
import { afterAll, afterEach, beforeAll } from "vitest";
import { stopAllEmulators } from "./emulator.ts";
import { stopAllProcesses } from "./processes.ts";
import { stopAllSidecars } from "./sidecar.ts";
import { startUpstream, type TestUpstream } from "./upstream.ts";

export function cleanUpAfterEach(): void {
  afterEach(async () => {
    await stopAllSidecars();
    await stopAllEmulators();
    await stopAllProcesses();
  });
}

/** Registers the hooks and returns the file's upstream (usable inside tests). */
export function useTestUpstream(): TestUpstream {
  let upstream: TestUpstream | undefined;
  const current = (): TestUpstream => {
    if (!upstream) throw new Error("the test upstream is only available inside tests");
    return upstream;
  };
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });
  cleanUpAfterEach();
  afterEach(() => {
    upstream?.reset();
  });
  return {
    get server() {
      return current().server;
    },
    get url() {
      return current().url;
    },
    get seen() {
      return current().seen;
    },
    handle: (handler: RequestListener) => current().handle(handler),
    reset: () => current().reset(),
    close: () => current().close(),
  };
}
