// The secrets' metrics, read from the runtime at scrape time: never a value, only ids, version
// hashes, ages and failure counts.

import { Counter, Gauge, type Registry } from "../deps.ts";
import type { SecretsRuntime } from "../secrets/runtime.ts";
import { versionLabel } from "../secrets/secret-state.ts";

export function registerSecretMetrics(secrets: SecretsRuntime, registry: Registry): void {
  const registers = [registry];
  new Gauge({
    name: "mcp_sidecar_secret_version_info",
    help: "1 per secret, labelled with a 12-hex hash of the VersionId in use (changes on rotation).",
    labelNames: ["secret", "version"],
    registers,
    collect() {
      this.reset();
      for (const secret of secrets.tracked.values()) {
        if (secret.current)
          this.set({ secret: secret.secretId, version: versionLabel(secret.current.versionId) }, 1);
      }
    },
  });
  new Gauge({
    name: "mcp_sidecar_secret_value_age_seconds",
    help: "Time since the version in use was first seen by the sidecar.",
    labelNames: ["secret"],
    registers,
    collect() {
      this.reset();
      const now = Date.now();
      for (const secret of secrets.tracked.values()) {
        if (secret.current) this.set({ secret: secret.secretId }, (now - secret.current.since) / 1000);
      }
    },
  });
  new Gauge({
    name: "mcp_sidecar_secret_last_refresh_timestamp_seconds",
    help: "When the secret was last fetched from the agent successfully (0: never).",
    labelNames: ["secret"],
    registers,
    collect() {
      for (const secret of secrets.tracked.values())
        this.set({ secret: secret.secretId }, (secret.lastSuccessAt ?? 0) / 1000);
    },
  });
  new Counter({
    name: "mcp_sidecar_secret_refresh_failures_total",
    help: "Failed fetches from the agent by secret and kind (unreachable, timeout, bad_token, throttled, ...).",
    labelNames: ["secret", "kind"],
    registers,
    collect() {
      this.reset();
      for (const secret of secrets.tracked.values()) {
        for (const [kind, count] of secret.failures) this.inc({ secret: secret.secretId, kind }, count);
      }
    },
  });
  new Counter({
    name: "mcp_sidecar_secret_on_demand_refreshes_total",
    help: "refreshNow fetches triggered by an API key no known version matched.",
    labelNames: ["secret"],
    registers,
    collect() {
      this.reset();
      for (const secret of secrets.tracked.values())
        this.inc({ secret: secret.secretId }, secret.onDemandCount);
    },
  });
}
