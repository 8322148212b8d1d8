// The stdio upstream as the sidecar runs it: each session's child started from the configuration
// with its environment of the moment (a rotated --secret-env reaches the next child at once), its
// stderr and exit in the log, tagged with the session's hash and the child's pid, and in metrics.

import type { SidecarConfig } from "../../config.ts";
import type { Registry } from "../../deps.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { shortHash } from "../../telemetry/short-hash.ts";
import { StdioMetrics } from "../../telemetry/stdio-metrics.ts";
import { childEnvironment } from "./environment.ts";
import { StdioProcess } from "./process.ts";
import { startReaper } from "./reaper.ts";
import { StderrLog } from "./stderr-log.ts";
import { StdioUpstream } from "./stdio-upstream.ts";

export interface StdioUpstreamParts {
  readonly logger: Logger;
  readonly registry: Registry;
  /** The --secret-env values now (empty without secrets). */
  readonly secretEnv: () => Readonly<Record<string, string>>;
  /** Bumped when an --secret-env value changes. */
  readonly secretEnvGeneration: () => number;
}

export function createStdioUpstream(
  config: SidecarConfig & { readonly stdioCommandLine: readonly string[] },
  parts: StdioUpstreamParts,
): { upstream: StdioUpstream; killChildrenNow: () => void } {
  const { logger } = parts;
  const children = new Set<StdioProcess>();
  let upstream: StdioUpstream | undefined;
  const reaper = startReaper({
    graceMs: config.stdioStopGraceMs,
    lost: (detail) =>
      logger.warn(
        { detail },
        "stdio reaper: a SIGKILL of the sidecar may leave its children's groups behind",
      ),
  });
  if (reaper === undefined)
    logger.info(
      "no /bin/sh for the stdio reaper: if the sidecar is SIGKILLed, what its children started ends only with the container (PID 1)",
    );
  const metrics = new StdioMetrics(
    parts.registry,
    () => upstream?.counts ?? { starting: 0, active: 0, spare: 0, pool: 0 },
  );
  upstream = new StdioUpstream(config, {
    startChild: (sessionId, sdk) => {
      // The session's id is a credential: the log names its hash, as the access log does.
      const session = shortHash(sessionId);
      let pid: number | undefined;
      const child: StdioProcess = new StdioProcess(
        {
          commandLine: config.stdioCommandLine,
          cwd: config.stdioCwd,
          env: childEnvironment(config.stdioBaseEnv, config.stdioEnv, parts.secretEnv()),
          graceMs: config.stdioStopGraceMs,
        },
        {
          sdk,
          ...(reaper ? { groups: reaper } : {}),
          stderr: new StderrLog((fields, message) => logger.info({ ...fields, session, pid }, message)),
          junk: (detail) =>
            logger.warn({ session, pid, detail }, "stdio server wrote a line that is not JSON-RPC"),
          exited: (exit) => {
            children.delete(child);
            metrics.exited.inc({ cause: exit.cause });
            const log = exit.cause === "stopped" ? logger.info.bind(logger) : logger.warn.bind(logger);
            log(
              {
                session,
                pid,
                code: exit.code,
                signal: exit.signal,
                cause: exit.cause,
                detail: exit.description,
              },
              "stdio server exited",
            );
          },
        },
      );
      pid = child.pid;
      children.add(child);
      metrics.started.inc();
      return child;
    },
    envGeneration: parts.secretEnvGeneration,
    events: {
      sessionStarted: () => {},
      childAnswered: (seconds) => metrics.startSeconds.observe(seconds),
      sessionEnded: (why) => metrics.sessionsEnded.inc({ reason: why }),
      closed: () => reaper?.close(),
    },
  });
  return {
    upstream,
    killChildrenNow: () => {
      for (const child of children) child.killNow();
      reaper?.close();
    },
  };
}
