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
  // A stdout that stays full (its reader alive but not reading) is retried until this deadline,
  // which only the exit's flush sets: the process ends rather than waiting on it forever.
  let giveUpAt = Number.POSITIVE_INFINITY;
  const destination = pino.destination({
    dest: 1,
    sync: false,
    minLength: 4096,
    retryEAGAIN: () => Date.now() < giveUpAt,
  });
  const timer = setInterval(() => destination.flush(), FLUSH_EVERY_MS);
  timer.unref();
  return {
    logger: createLogger(level, destination),
    // sonic-boom is held at 5 (package.json overrides; pino 10.4 asks for ^4): 4's flushSync
    // retried every failed write forever, EPIPE included, so a sidecar whose stdout reader was
    // gone (a supervisor that died) never finished its exit.
    flushSync() {
      giveUpAt = Date.now() + EXIT_FLUSH_MS;
      try {
        destination.flushSync();
      } catch {
        // stdout's reader is gone (EPIPE) or stopped reading: nothing more can be written. What
        // pino does on an EPIPE of its own, so that its exit hook's flush throws nothing either
        // (a throw in an exit handler would skip the handlers after it: the children's SIGKILL).
        destination.flushSync = () => {};
        destination.write = () => true;
      }
    },
  };
}

/** How long the exit's flush may wait on a stdout that is full. */
const EXIT_FLUSH_MS = 2000;

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
