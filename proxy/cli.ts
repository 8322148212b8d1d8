#!/usr/bin/env node
// The command line: the one module that touches `process` (argv, env, signals, exit codes).
//
//   mcp-sidecar --upstream URL [options]     run the sidecar (see --help)
//   mcp-sidecar healthcheck [--url URL]      exit 0 when /health answers 200, else 1 (container checks)
//
// `mcp-sidecar agent-emulator` is dispatched by bin/mcp-sidecar.js: the emulator is a dev tool, not
// part of the product's import graph.

import { envName, helpText, needsSecretsAgent, parseConfig } from "./config.ts";
import { startIdleCompaction } from "./lifecycle/idle-compaction.ts";
import {
  AgentTokenError,
  DEFAULT_SSRF_ENV_VARIABLES,
  readAgentToken,
  resolveTokenValue,
} from "./secrets/agent-token.ts";
import { Sidecar, VERSION } from "./sidecar.ts";
import { createProcessLogger, type ProcessLogger } from "./telemetry/logger.ts";

const EXIT_INVALID_CONFIG = 2;
/** Set once the sidecar runs: flushed before every exit so no log line is lost. */
let processLogger: ProcessLogger | undefined;

/**
 * The agent's SSRF token: --secrets-token (a value or file://), else the agent's own variables. A
 * file:// token is re-read on use (it is small, and the agent may have been restarted with a new
 * one); the first read happens now so that a missing token is a configuration error at start.
 */
function agentTokenReader(flagValue: string | undefined): () => string {
  const fromFile = (
    flagValue ?? DEFAULT_SSRF_ENV_VARIABLES.map((name) => process.env[name]).find((v) => v !== undefined)
  )?.startsWith("file://");
  const read = () =>
    flagValue !== undefined
      ? resolveTokenValue(flagValue, envName("secrets-token")).token
      : readAgentToken(process.env).token;
  const first = read();
  return fromFile ? read : () => first;
}

async function healthcheck(args: readonly string[]): Promise<number> {
  let url: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--url") url = args[++i];
    else if (arg.startsWith("--url=")) url = arg.slice(6);
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        `Usage: mcp-sidecar healthcheck [--url URL]\n\nExits 0 when URL answers 200 within 2 s, else 1. Default URL:\nhttp://127.0.0.1:$${envName("port")}$${envName("health-path")} (defaults 8080, /health).\n`,
      );
      return 0;
    } else {
      process.stderr.write(`healthcheck: unknown argument "${arg}" (see healthcheck --help)\n`);
      return EXIT_INVALID_CONFIG;
    }
  }
  url ??= `http://127.0.0.1:${process.env[envName("port")] || "8080"}${process.env[envName("health-path")] || "/health"}`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    if (response.status === 200) return 0;
    process.stderr.write(`healthcheck: ${url} answered ${response.status}\n`);
  } catch (error) {
    process.stderr.write(`healthcheck: ${url}: ${(error as Error).cause ?? (error as Error).message}\n`);
  }
  return 1;
}

async function run(args: readonly string[]): Promise<number> {
  if (args.includes("--version")) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const parsed = parseConfig(args, process.env);
  if (parsed.kind === "help") {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  if (parsed.kind === "errors") {
    process.stderr.write(
      `mcp-sidecar: invalid configuration:\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}\n`,
    );
    process.stderr.write("Run mcp-sidecar --help for every option.\n");
    return EXIT_INVALID_CONFIG;
  }
  const config = parsed.config;
  let agentToken: (() => string) | undefined;
  if (needsSecretsAgent(config)) {
    try {
      agentToken = agentTokenReader(config.secretsToken);
    } catch (error) {
      if (!(error instanceof AgentTokenError)) throw error;
      process.stderr.write(
        `mcp-sidecar: invalid configuration:\n  - ${error.message} (needed by the secret deliveries)\n`,
      );
      return EXIT_INVALID_CONFIG;
    }
  }
  processLogger = createProcessLogger(config.logLevel);
  const logger = processLogger.logger;
  const sidecar = new Sidecar(config, { logger, ...(agentToken ? { agentToken } : {}) });
  // However the process ends (a drain, a fatal error, process.exit anywhere), no stdio child
  // outlives it: a drained sidecar has stopped them already, this catches every other way.
  process.on("exit", () => sidecar.killChildrenNow());

  // First SIGTERM/SIGINT drains; a second one stops at once (operators expect Ctrl-C twice to work).
  const onSignal = (signal: NodeJS.Signals): void => {
    if (sidecar.phase === "serving") {
      logger.info({ signal }, "signal received: draining");
      logger.flush();
      void sidecar.close();
    } else {
      logger.warn({ signal }, "second signal: stopping now");
      logger.flush();
      void sidecar.destroy();
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    await sidecar.listen();
  } catch (error) {
    // The last lifecycle line, with the code the process exits with. No destroy(): nothing runs yet
    // that process.exit leaves behind, and its "sidecar stopped" line would report the drain's
    // exitCode 0 (nothing was in flight) for a process that exits 1.
    logger.fatal({ err: error, exitCode: 1 }, "cannot listen");
    return 1;
  }
  const stopCompaction = startIdleCompaction();
  const outcome = await sidecar.finished;
  stopCompaction();
  return outcome.exitCode;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  let code: number;
  if (command === "healthcheck") code = await healthcheck(rest);
  else code = await run(process.argv.slice(2));
  // Exit as soon as the drain is done: nothing left in flight needs the event loop.
  processLogger?.flushSync();
  process.exit(code);
}

process.on("uncaughtException", (error) => {
  processLogger?.flushSync();
  process.stderr.write(
    `${JSON.stringify({ level: "fatal", msg: "uncaught exception", err: { message: error.message, stack: error.stack } })}\n`,
  );
  process.exit(1);
});

await main();
