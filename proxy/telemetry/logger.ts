// JSON-lines logging through pino (fast, structured, well kept). Secrets never reach a log line:
// nothing here logs headers or bodies, and session ids are hashed before they are logged
// (access-log.ts).

import { type DestinationStream, type Logger, pino } from "pino";
import type { LogLevel } from "../config.ts";

export type { Logger } from "pino";

export interface ProcessLogger {
  readonly logger: Logger;
  /** Writes out whatever is buffered; call before process.exit. */
  flushSync(): void;
}

const FLUSH_EVERY_MS = 1000;

/**
 * The process logger: buffered writes to stdout, because one write syscall per request line cost
 * the sidecar about a fifth of its CPU per request (bench/profile.ts). A line waits at most
 * FLUSH_EVERY_MS, and the CLI flushes synchronously before every exit, so a drain or an error exit
 * loses nothing; only a SIGKILL can lose the last second.
 */
export function createProcessLogger(level: LogLevel): ProcessLogger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => destination.flush(), FLUSH_EVERY_MS);
  timer.unref();
  return {
    logger: createLogger(level, destination),
    flushSync() {
      try {
        destination.flushSync();
      } catch {
        // stdout already gone (a closed pipe): nothing more can be written anyway
      }
    },
  };
}

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "mcp-sidecar" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
