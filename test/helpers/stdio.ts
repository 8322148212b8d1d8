// The stdio servers the stdio upstream's tests run, as --stdio command lines, the one answer shape
// they read, and a sidecar whose children get a secret that the tests rotate.

import { execFileSync } from "node:child_process";
import { AGENT_TOKEN, startEmulator } from "./emulator.ts";
import { ROOT, startSidecarProcess } from "./processes.ts";

const NODE = process.execPath;
/** test/peers/stdio-test-server.ts: crashes, hangs, spawns, echoes its environment on command. */
export const TEST_SERVER = `${NODE} ${ROOT}test/peers/stdio-test-server.ts`;
export const EVERYTHING = `${NODE} ${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio`;
export const MEMORY = `${NODE} ${ROOT}node_modules/@modelcontextprotocol/server-memory/dist/index.js`;
/**
 * test/peers/stdio-python-server.py, by the interpreter's own path (a pyenv shim on PATH would
 * need more of the environment than a child gets). .ci/run installs python3 where it is missing.
 */
export const PYTHON_SERVER = `${execFileSync("python3", ["-c", "import sys; print(sys.executable)"], {
  encoding: "utf8",
}).trim()} ${ROOT}test/peers/stdio-python-server.py`;

type Text = { content: { text: string }[] };
/** The first text content of a tool result. */
export const textOf = (result: unknown) => (result as Text).content[0]?.text ?? "";

/**
 * A sidecar running TEST_SERVER whose children get UPSTREAM_KEY from the agent emulator's
 * `mcp/upstream` (first `value`), re-read every 200 ms; `args` go on its command line.
 */
export async function startWithSecretEnv(value: string, args: readonly string[] = []) {
  const agent = await startEmulator(
    { "mcp/upstream": value },
    { cache: { ttlMs: 100, size: 1000, ignoreTransientErrors: true } },
  );
  const sidecar = await startSidecarProcess(
    ["--stdio", TEST_SERVER, "--secret-env", "UPSTREAM_KEY=mcp/upstream", ...args],
    {
      AWS_TOKEN: AGENT_TOKEN,
      MCP_SIDECAR_SECRETS_AGENT: agent.url.origin,
      MCP_SIDECAR_REFRESH_INTERVAL: "200ms",
    },
  );
  return { agent, sidecar };
}
