// Builds the routing upstream around the local HTTP upstream (--session-routing), and works out the
// URL it advertises in its tokens.

import type { SidecarConfig } from "../../config.ts";
import type { Registry } from "../../deps.ts";
import type { SecretsRuntime } from "../../secrets/runtime.ts";
import { AdvertiseError, advertisedUrl, resolveAutoAddress } from "../../sessions/advertise.ts";
import { PeerGuard } from "../../sessions/peers.ts";
import type { Logger } from "../../telemetry/logger.ts";
import { RoutingMetrics } from "../../telemetry/routing-metrics.ts";
import type { HttpUpstream } from "../http/http-upstream.ts";
import { PeerPools } from "./peer-pools.ts";
import { RoutingUpstream } from "./routing-upstream.ts";

export type RoutingConfig = Pick<
  SidecarConfig,
  | "sessionContinuity"
  | "advertiseUrl"
  | "peerCidrs"
  | "peerTimeoutMs"
  | "ecsMetadataUri"
  | "upstreamHeadersTimeoutMs"
  | "sseKeepaliveMs"
  | "maxBodyBytes"
>;

export interface SessionRouting {
  readonly upstream: RoutingUpstream;
  /** Called before the front door binds: resolves `auto`; throws an AdvertiseError naming the problem. */
  prepare(): Promise<void>;
  /** Called once bound: the advertised URL, with the bound port when the flag names none. */
  listening(boundPort: number): string;
}

/** How long reading the task metadata at start-up may take. */
const METADATA_TIMEOUT_MS = 5000;

export function createSessionRouting(
  local: HttpUpstream,
  config: RoutingConfig,
  parts: { readonly secrets: SecretsRuntime; readonly registry: Registry; readonly logger: Logger },
): SessionRouting {
  const guard = new PeerGuard(config.peerCidrs);
  const upstream = new RoutingUpstream(local, {
    keys: () => parts.secrets.sessionKeys,
    refreshKeys: (keyId) => parts.secrets.refreshSessionKeysOnDemand(keyId),
    guard,
    continuity: config.sessionContinuity,
    peers: new PeerPools({
      connectTimeoutMs: config.peerTimeoutMs,
      // The owner's response starts when its upstream's does: as patient as a local forward.
      headersTimeoutMs: config.upstreamHeadersTimeoutMs,
      sseKeepaliveMs: config.sseKeepaliveMs,
      maxBodyBytes: config.maxBodyBytes,
    }),
    metrics: new RoutingMetrics(parts.registry),
    logger: parts.logger,
    maxBodyBytes: config.maxBodyBytes,
  });
  let base = config.advertiseUrl === "auto" ? undefined : config.advertiseUrl;
  return {
    upstream,
    async prepare() {
      if (base === undefined) {
        const address = await resolveAutoAddress(config.ecsMetadataUri ?? "", METADATA_TIMEOUT_MS);
        base = new URL(`http://${address.includes(":") ? `[${address}]` : address}`);
      }
      if (guard.originOf(base.origin) === undefined)
        throw new AdvertiseError(
          `--advertise-url ${base.origin} is outside --peer-cidrs (${config.peerCidrs.map((c) => c.label).join(", ")}): other tasks would never forward to it`,
        );
    },
    listening(boundPort) {
      const url = advertisedUrl(base as URL, boundPort);
      guard.onlyPort(Number(new URL(url).port || "80"));
      upstream.advertise(url);
      return url;
    },
  };
}
