// The environment of a stdio child: explicit and minimal. The sidecar's own environment holds its
// secrets (the agent's token above all) and its configuration; a child gets none of it unless
// named: PATH, HOME, LANG, TZ as the sidecar has them (config.ts reads them from the environment
// parseConfig is given), each --stdio-env, and each --secret-env's current value. Pure.

import type { EnvSetting } from "../../config/values.ts";

export function childEnvironment(
  base: Readonly<Record<string, string>>,
  settings: readonly EnvSetting[],
  secrets: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "LANG", "TZ"]) if (base[name] !== undefined) env[name] = base[name];
  for (const setting of settings) {
    const value = setting.value ?? base[setting.name];
    if (value !== undefined) env[setting.name] = value;
  }
  Object.assign(env, secrets);
  return env;
}
