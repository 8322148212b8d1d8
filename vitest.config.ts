import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Integration tests spawn real servers and clients; two cores, so two files at a time.
    maxWorkers: 2,
    testTimeout: 60_000,
    // expect.poll waits on events (a log line, a readiness flip), not on time: a loaded CI machine
    // may need far more than the 1 s default; a genuine failure still fails, only later.
    expect: { poll: { timeout: 20_000, interval: 20 } },
    hookTimeout: 60_000,
    // Every child process a test starts is stopped in its teardown; this catches any that is not.
    teardownTimeout: 10_000,
  },
});
