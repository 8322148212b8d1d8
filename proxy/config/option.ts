// One option of the sidecar: its flag, environment variable (derived from the flag), default and
// parser. The tables are in the files beside this one, one per concern; config.ts reads them.

import type { SidecarConfig } from "../config.ts";

export type OptionKey = keyof SidecarConfig;

export interface OptionSpec<K extends OptionKey = OptionKey> {
  readonly key: K;
  /** Flag name without the leading dashes; the env var is derived from it. */
  readonly flag: string;
  readonly valueName: string;
  /** Written as a user would type it; parsed with the same parser as user input. */
  readonly default: string | undefined;
  readonly description: string;
  /**
   * `required` (the default when there is no default value) or `optional` (undefined when absent);
   * `repeatable`: the flag may be given several times, the env var holds a comma-separated list, and
   * the value is the list of parsed items.
   */
  readonly kind?: "optional" | "repeatable";
  readonly parse: (raw: string) => K extends OptionKey ? unknown : never;
}

export function option<K extends OptionKey>(spec: OptionSpec<K>): OptionSpec<K> {
  return spec;
}
