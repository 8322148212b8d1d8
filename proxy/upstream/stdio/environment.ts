// The environment of a stdio child: explicit and minimal. The sidecar's own environment holds its
// secrets (the agent's token above all) and its configuration; a child gets none of it unless
// named: PATH, HOME, LANG, TZ as the sidecar has them (config.ts reads them from the environment
// parseConfig is given), each --stdio-env, and each --secret-env's current value. Pure.
//
// One variable more, PYTHONUNBUFFERED=1 (a --stdio-env can set it otherwise): Python block-buffers
// a stdout that is a pipe, so a server that print()s its answers without flushing would hold them
// until 8 KiB had piled up, and every call would hang (a failure users of stdio bridges report).
// Other runtimes ignore it.

import type { EnvSetting } from "../../config/values.ts";

export function childEnvironment(
  base: Readonly<Record<string, string>>,
  settings: readonly EnvSetting[],
  secrets: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "LANG", "TZ"]) if (base[name] !== undefined) env[name] = base[name];
  env.PYTHONUNBUFFERED = "1";
  for (const setting of settings) {
    const value = setting.value ?? base[setting.name];
    if (value !== undefined) env[setting.name] = value;
  }
  Object.assign(env, secrets);
  return env;
}
