// An in-process agent emulator for tests, with the token the sidecar under test is given.
import {
  AgentEmulator,
  DEFAULT_EMULATOR_SETTINGS,
  type EmulatorSettings,
} from "../../agent/emulator/emulator.ts";
import { parseSecretsDocument } from "../../agent/emulator/secrets-file.ts";

export const AGENT_TOKEN = "test-ssrf-token";
const running = new Set<AgentEmulator>();

export async function startEmulator(
  secrets: Record<string, unknown>,
  settings: Partial<EmulatorSettings> = {},
  now?: () => number,
): Promise<AgentEmulator> {
  const emulator = new AgentEmulator(
    parseSecretsDocument({ secrets }, "test"),
    { ...DEFAULT_EMULATOR_SETTINGS, port: 0, token: AGENT_TOKEN, ...settings },
    now,
  );
  running.add(emulator);
  await emulator.start();
  return emulator;
}

export async function stopAllEmulators(): Promise<void> {
  await Promise.all([...running].map((emulator) => emulator.stop()));
  running.clear();
}
