// What counts as a secret in a container's plain environment: the one definition that the policy
// pack's "no secret in plain env" rule (policy/rules.ts) and the settings checks (plan.ts) both
// apply, so a preview refuses what the pack would. A task definition's environment is readable by
// anyone who may describe it; secrets go through `secrets` (an ARN) or the Secrets Manager Agent.

import { envName, OPTIONS } from "../../proxy/config.ts";

const SECRET_LOOKING_NAME = /(SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL)/i;
/** user:password@ in a URL is a secret whatever the variable's name (DATABASE_URL=...). */
const CREDENTIALS_URL = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;
/**
 * The sidecar's own variables say what they hold in its option table: durations, sizes, paths and
 * secret references (MCP_SIDECAR_SECRETS_AGENT_TIMEOUT is a duration). Only --secrets-token's value
 * is a secret.
 */
const SIDECAR_REFERENCES = new Set(
  OPTIONS.filter((spec) => spec.flag !== "secrets-token").map((spec) => envName(spec.flag)),
);

export type PlainSecret = "credentials-url" | "secret-name";

/** Whether a plain variable carries a secret, and why; undefined when it does not. */
export function plainEnvironmentSecret(name: string, value: string): PlainSecret | undefined {
  if (CREDENTIALS_URL.test(value)) return "credentials-url";
  if (!SECRET_LOOKING_NAME.test(name) || SIDECAR_REFERENCES.has(name)) return undefined;
  // A reference is not a secret: an ARN (the value lives in Secrets Manager) or a URL.
  if (/^arn:aws[a-z-]*:/.test(value) || /^https?:\/\//.test(value)) return undefined;
  return "secret-name";
}

/** The reason, naming the variable and never its value. */
export function describePlainSecret(kind: PlainSecret, name: string): string {
  return kind === "credentials-url"
    ? `${name} is a URL carrying credentials in plain environment`
    : `${name} looks like a secret in plain environment`;
}
