// `mcp-sidecar agent-emulator`: the Secrets Manager Agent emulator as a process (local stack,
// docker-compose, tests), and `agent-emulator rotate` to rotate a secret (into the state file beside
// the secrets file: see secrets-source.ts).
//
//   mcp-sidecar agent-emulator --secrets secrets.yaml [--config config.toml] [--port 2773]
//   mcp-sidecar agent-emulator rotate --secrets secrets.yaml SECRET_ID [--value VALUE]

import { unwatchFile, watchFile } from "node:fs";
import { parseArgs } from "node:util";
import { parseDuration } from "../../proxy/config/values.ts";
import { AgentTokenError, readAgentToken } from "../../proxy/secrets/agent-token.ts";
import { AWSCURRENT, type StoredSecret } from "./backend.ts";
import { AgentConfigError, readAgentConfig } from "./config.ts";
import { AgentEmulator } from "./emulator.ts";
import { SecretsFileError } from "./secrets-file.ts";
import { rotateSecret, SecretsSource } from "./secrets-source.ts";

const HELP = `Usage: mcp-sidecar agent-emulator --secrets FILE [options]
       mcp-sidecar agent-emulator rotate --secrets FILE SECRET_ID [--value VALUE]

Serves secrets from FILE (JSON or YAML) exactly as the AWS Secrets Manager Agent 2.0 serves them
from Secrets Manager, on 127.0.0.1. The SSRF token comes from the first set variable of the agent's
ssrf_env_variables (default AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN; a
file:// value names a file holding it); with none set it exits 1, like the agent.

Options:
  --secrets FILE              Secrets file (required). It and its state file (FILE with .state
                              before the extension, written by rotate) are read again when either
                              changes, before the next request: a change in "Secrets Manager", which
                              the agent serves after its cache TTL, or at once with refreshNow=true
  --config FILE               The agent's config.toml (same keys and validation as agent 2.0.0)
  --port PORT                 Overrides http_port (0 = any free port)
  --connection-lifetime DUR   The agent cuts every connection this long after accepting it
                              (default 61s, as the agent; shorter only for tests)
  --no-watch                  Read the secrets once, at start
  -h, --help

rotate: makes a new version AWSCURRENT (the old one AWSPREVIOUS) and writes it to the state file
beside FILE (atomically; FILE itself is never rewritten, so its comments stay). A running emulator
serving FILE has it for every request made after rotate returns. Delete the state file to go back
to FILE's values.`;

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), service: "agent-emulator", msg, ...fields })}\n`,
  );
}

async function rotateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { secrets: { type: "string" }, value: { type: "string" } },
    allowPositionals: true,
  });
  if (!values.secrets || positionals.length !== 1) {
    process.stderr.write("agent-emulator rotate: needs --secrets FILE and exactly one SECRET_ID\n");
    return 2;
  }
  const secretId = positionals[0] as string;
  const rotated = rotateSecret(values.secrets, secretId, values.value);
  if (!rotated) {
    process.stderr.write(`agent-emulator rotate: no secret ${secretId} in ${values.secrets}\n`);
    return 1;
  }
  log("rotated", {
    secret: secretId,
    versionId: rotated.version.versionId,
    stage: AWSCURRENT,
    stateFile: rotated.stateFile,
  });
  return 0;
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      secrets: { type: "string" },
      config: { type: "string" },
      port: { type: "string" },
      "connection-lifetime": { type: "string" },
      "no-watch": { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.secrets) {
    process.stderr.write("agent-emulator: --secrets FILE is required (see --help)\n");
    return 2;
  }
  const config = readAgentConfig(values.config);
  let port = config.settings.port;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      process.stderr.write(`agent-emulator: --port "${values.port}" is not a port\n`);
      return 2;
    }
  }
  let lifetime = config.settings.connectionLifetimeMs;
  if (values["connection-lifetime"] !== undefined) {
    try {
      lifetime = parseDuration(values["connection-lifetime"]);
    } catch (error) {
      process.stderr.write(`agent-emulator: --connection-lifetime ${(error as Error).message}\n`);
      return 2;
    }
  }
  const token = readAgentToken(process.env, config.ssrfEnvVariables);
  const source = new SecretsSource(values.secrets);
  const emulator = new AgentEmulator(source.load(), {
    ...config.settings,
    port,
    connectionLifetimeMs: lifetime,
    token: token.token,
  });
  let url: URL;
  try {
    url = await emulator.start();
  } catch (error) {
    // The stack that started it names the flag to change; this names the port and the cause.
    const { code, message } = error as NodeJS.ErrnoException;
    log("cannot listen", { port, code, error: message });
    return 1;
  }
  log("listening", {
    url: url.href,
    port: Number(url.port),
    secrets: emulator.backend.secrets.map((s) => s.name),
    tokenFrom: token.source,
    ttlSeconds: config.settings.cache.ttlMs / 1000,
  });

  const watched = [source.file, source.stateFile];
  if (!values["no-watch"]) {
    let lastError: string | undefined;
    const changed = (): StoredSecret[] | undefined => {
      const checked = source.check();
      if (checked.kind === "reloaded") {
        lastError = undefined;
        log("secrets file reloaded", { secrets: checked.secrets.map((s) => s.name) });
        return checked.secrets;
      }
      // Once per problem, not once per request.
      if (checked.kind === "unreadable" && checked.error.message !== lastError) {
        lastError = checked.error.message;
        log("secrets file not reloaded: keeping the previous content", { error: lastError });
      }
      return undefined;
    };
    emulator.follow(changed);
    // Requests reload by themselves (emulator.follow); the watcher makes a change show in the log
    // when no request comes.
    for (const file of watched)
      watchFile(file, { interval: 200 }, () => {
        const secrets = changed();
        if (secrets) emulator.backend.replaceAll(secrets);
      });
  }
  const stop = async (signal: string) => {
    for (const file of watched) unwatchFile(file);
    await emulator.stop();
    log("stopped", { signal });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  return await new Promise<number>(() => {});
}

export async function agentEmulatorMain(args: string[]): Promise<number> {
  try {
    if (args[0] === "rotate") return await rotateCommand(args.slice(1));
    return await serve(args);
  } catch (error) {
    if (
      error instanceof AgentTokenError ||
      error instanceof AgentConfigError ||
      error instanceof SecretsFileError
    ) {
      process.stderr.write(`agent-emulator: ${error.message}\n`);
      return 1;
    }
    if ((error as NodeJS.ErrnoException).syscall !== undefined) {
      // A secrets file that is missing or unreadable: the message names the file.
      process.stderr.write(`agent-emulator: ${(error as Error).message}\n`);
      return 1;
    }
    if ((error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`agent-emulator: ${(error as Error).message} (see --help)\n`);
      return 2;
    }
    throw error;
  }
}
