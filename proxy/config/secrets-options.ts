// Secrets from the AWS Secrets Manager Agent and their deliveries (secrets/).

import { parseEnvDelivery, parseFileDelivery, parseHeaderDelivery, parseSecretRef } from "../secrets/spec.ts";
import { type OptionSpec, option } from "./option.ts";
import { parseAgentUrl, parseDuration, secretParser } from "./values.ts";

export const SECRETS_OPTIONS: readonly OptionSpec[] = [
  option({
    key: "secretsAgent",
    flag: "secrets-agent",
    valueName: "URL",
    default: "http://127.0.0.1:2773",
    description: "The AWS Secrets Manager Agent beside the sidecar (loopback only, as the agent accepts)",
    parse: parseAgentUrl,
  }),
  option({
    key: "secretsToken",
    flag: "secrets-token",
    valueName: "TOKEN",
    default: undefined,
    kind: "optional",
    description:
      "The agent's SSRF token, or file:///path to read it from; when absent it is read as the agent reads it: AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN",
    parse: (raw: string) => raw,
  }),
  option({
    key: "secretsAgentTimeoutMs",
    flag: "secrets-agent-timeout",
    valueName: "DURATION",
    default: "5s",
    description: "How long one request to the agent may take",
    parse: parseDuration,
  }),
  option({
    key: "refreshIntervalMs",
    flag: "refresh-interval",
    valueName: "DURATION",
    default: "30s",
    description:
      "How often secrets are polled from the agent (±10% jitter); a rotation shows within this plus the agent's ttl_seconds",
    parse: parseDuration,
  }),
  option({
    key: "maxStalenessMs",
    flag: "max-staleness",
    valueName: "DURATION",
    default: "0",
    description:
      "Fail /ready when a secret has not been refreshed for this long (0 = never: serve the last good value)",
    parse: parseDuration,
  }),
  option({
    key: "authSecret",
    flag: "auth-secret",
    valueName: "SECRET_ID[#key]",
    default: undefined,
    kind: "optional",
    description:
      "Clients must send Authorization: Bearer <this secret>; its AWSCURRENT and AWSPREVIOUS versions are both accepted during a rotation",
    parse: secretParser(parseSecretRef),
  }),
  option({
    key: "injectHeaders",
    flag: "inject-header",
    valueName: "NAME=SECRET_ID[#key]",
    default: undefined,
    kind: "repeatable",
    description:
      "Set header NAME to the secret's current value on every upstream request (repeatable; env: comma-separated)",
    parse: secretParser(parseHeaderDelivery),
  }),
  option({
    key: "secretFiles",
    flag: "secret-file",
    valueName: "/PATH=SECRET_ID[#key]",
    default: undefined,
    kind: "repeatable",
    description:
      "Keep the secret's current value in file PATH (atomic replace, mode 0400) (repeatable; env: comma-separated)",
    parse: secretParser(parseFileDelivery),
  }),
  option({
    key: "secretEnv",
    flag: "secret-env",
    valueName: "NAME=SECRET_ID[#key]",
    default: undefined,
    kind: "repeatable",
    description:
      "With --stdio: environment variable NAME of every stdio child set to the secret's current value; new children get a rotated value at once (repeatable; env: comma-separated)",
    parse: secretParser(parseEnvDelivery),
  }),
];
