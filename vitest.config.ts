import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Integration tests spawn real servers and clients; two cores, so two files at a time.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Every child process a test starts is stopped in its teardown; this catches any that is not.
    teardownTimeout: 10_000,
  },
});
