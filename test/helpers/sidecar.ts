// The sidecar in-process through its library API, on an ephemeral port, logs captured.
import { Writable } from "node:stream";
import { parseConfig } from "../../proxy/config.ts";
import { Sidecar, type SidecarOptions } from "../../proxy/sidecar.ts";
import { createLogger } from "../../proxy/telemetry/logger.ts";
import { capture } from "./capture.ts";

export interface TestSidecar {
  readonly sidecar: Sidecar;
  readonly url: URL;
  /** Every log line, parsed. */
  readonly logs: Record<string, unknown>[];
}

const started = new Set<Sidecar>();

export async function startSidecar(
  upstream: URL | string,
  args: readonly string[] = [],
  options: Omit<SidecarOptions, "logger"> = {},
  /** Where it listens: an ephemeral port on 127.0.0.1 unless given (tasks share a port on their own addresses). */
  listen: { readonly host: string; readonly port: number } = { host: "127.0.0.1", port: 0 },
): Promise<TestSidecar> {
  const parsed = parseConfig(
    [
      "--upstream",
      typeof upstream === "string" ? upstream : upstream.origin,
      "--port",
      String(listen.port),
      "--host",
      listen.host,
      ...args,
    ],
    {},
  );
  if (parsed.kind !== "config") throw new Error(`bad test config: ${JSON.stringify(parsed)}`);
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        capture("sidecar log", line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const sidecar = new Sidecar(parsed.config, { ...options, logger: createLogger("debug", destination) });
  started.add(sidecar);
  const url = await sidecar.listen();
  return { sidecar, url, logs };
}

export async function stopAllSidecars(): Promise<void> {
  await Promise.all([...started].map((sidecar) => sidecar.destroy()));
  started.clear();
}
