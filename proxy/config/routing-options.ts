// Session routing across tasks (sessions/, upstream/routing/): owner-encoded session tokens,
// forwarding to the owning task's sidecar, and continuity when the owner is gone.

import type { SidecarConfig } from "../config.ts";
import { parseSecretRef } from "../secrets/spec.ts";
import { type Cidr, parseCidr } from "../sessions/cidr.ts";
import { type OptionSpec, option } from "./option.ts";
import { InvalidValue, parseBoolean, parseDuration, parseEnum, secretParser } from "./values.ts";

export type SessionContinuity = "off" | "replay";

export const ROUTING_OPTIONS: readonly OptionSpec[] = [
  option({
    key: "sessionRouting",
    flag: "session-routing",
    valueName: "on|off",
    default: "off",
    description:
      "Give clients sealed session tokens (AES-256-GCM) that name the task owning the session, and forward each session's requests to its owner: sessions work behind a per-request load balancer",
    parse: parseBoolean,
  }),
  option({
    key: "sessionSecret",
    flag: "session-secret",
    valueName: "SECRET_ID[#key]",
    default: undefined,
    kind: "optional",
    description:
      "With --session-routing: the secret the session token key is derived from (the same for every task); its AWSCURRENT and AWSPREVIOUS versions both open tokens",
    parse: secretParser(parseSecretRef),
  }),
  option({
    key: "sessionContinuity",
    flag: "session-continuity",
    valueName: "off|replay",
    default: "replay",
    description:
      "With --session-routing, when a session's owner is gone (drained, replaced, unreachable): replay = re-create the session on this task from the client's initialize and carry on; off = 404, the client re-initializes",
    parse: parseEnum<SessionContinuity>(["off", "replay"]),
  }),
  option({
    key: "advertiseUrl",
    flag: "advertise-url",
    valueName: "URL|auto",
    default: undefined,
    kind: "optional",
    description:
      "With --session-routing: how other tasks reach this sidecar, e.g. http://10.0.1.23 (the listening port is added when none is given); auto = the task's address from the ECS task metadata endpoint v4",
    parse: parseAdvertiseUrl,
  }),
  option({
    key: "peerCidrs",
    flag: "peer-cidrs",
    valueName: "CIDR",
    default: undefined,
    kind: "repeatable",
    description:
      "With --session-routing: the only addresses sessions are forwarded to (the VPC's CIDR on ECS), and only on the sidecar's own port (every task listens on the same one); an owner elsewhere is never contacted (repeatable; env: comma-separated)",
    parse: (raw: string): Cidr => {
      const cidr = parseCidr(raw);
      if (typeof cidr === "string") throw new InvalidValue(cidr);
      return cidr;
    },
  }),
  option({
    key: "peerTimeoutMs",
    flag: "peer-timeout",
    valueName: "DURATION",
    default: "2s",
    description:
      "With --session-routing: how long connecting to an owner's sidecar may take before the owner counts as gone (its answer is then awaited as a local one is: --upstream-headers-timeout)",
    parse: parseDuration,
  }),
];

/** `auto`, or an http:// origin whose host is an IP address (peers are only ever contacted by address). */
export function parseAdvertiseUrl(raw: string): URL | "auto" {
  if (raw === "auto") return "auto";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidValue(`"${raw}" is not a URL or auto (e.g. http://10.0.1.23:8080)`);
  }
  if (url.protocol !== "http:") throw new InvalidValue(`"${raw}": sidecars reach each other over http:`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username)
    throw new InvalidValue(`"${raw}" must be an origin only (no path, query, fragment or credentials)`);
  const cidr = parseCidr(url.hostname.replace(/^\[|\]$/g, ""));
  if (typeof cidr === "string")
    throw new InvalidValue(`"${raw}": the host must be an IP address (peers are contacted by address only)`);
  return new URL(url.origin);
}

/** What is wrong with the routing options as a whole (each flag is valid on its own). */
export function routingProblems(config: SidecarConfig): string[] {
  const errors: string[] = [];
  if (!config.sessionRouting) {
    for (const [flag, set] of [
      ["--session-secret", config.sessionSecret !== undefined],
      ["--advertise-url", config.advertiseUrl !== undefined],
      ["--peer-cidrs", config.peerCidrs.length > 0],
    ] as const)
      if (set) errors.push(`${flag} is for session routing: set --session-routing on too`);
    return errors;
  }
  if (config.upstream === undefined)
    errors.push(
      "--session-routing is for an HTTP --upstream: stdio sessions are not routed across tasks yet (run one task, or front an HTTP server)",
    );
  if (config.sessionSecret === undefined)
    errors.push(
      "--session-routing needs --session-secret SECRET_ID[#key]: the key every task seals tokens with",
    );
  if (config.advertiseUrl === undefined)
    errors.push(
      "--session-routing needs --advertise-url (a URL other tasks reach this sidecar at, or auto on ECS)",
    );
  if (config.advertiseUrl === "auto" && config.ecsMetadataUri === undefined)
    errors.push(
      "--advertise-url auto reads ECS_CONTAINER_METADATA_URI_V4, which is not set (ECS sets it on Fargate); give a URL instead",
    );
  if (config.peerCidrs.length === 0)
    errors.push("--session-routing needs --peer-cidrs: the addresses other tasks may have (the VPC's CIDR)");
  if (config.peerTimeoutMs === 0) errors.push("--peer-timeout must be above 0");
  return errors;
}
