// JSON-lines logging through pino (fast, structured, well kept). Secrets never reach a log line:
// nothing here logs headers or bodies, and session ids are hashed before they are logged.

import { createHash } from "node:crypto";
import { type DestinationStream, type Logger, pino } from "pino";
import type { LogLevel } from "./config.ts";

export type { Logger } from "pino";

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "mcp-sidecar" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous writes: a drain ends in process.exit, and no line may be lost on the way out.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A session id is a bearer credential for its session: log only a short hash of it. */
export function hashSessionId(sessionId: string | undefined): string | undefined {
  if (sessionId === undefined) return undefined;
  return createHash("sha256").update(sessionId).digest("hex").slice(0, 12);
}
