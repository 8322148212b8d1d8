// The URL other tasks reach this sidecar at (--advertise-url): given, or `auto`, read from the ECS
// task metadata endpoint v4. On Fargate (awsvpc) every container of a task shares the task's ENI, and
// the container metadata's Networks[0].IPv4Addresses[0] is the task's private address (AWS, "task
// metadata v4 examples for tasks on Fargate").

import { Client } from "../deps.ts";

/** The task's private IPv4 address from a container metadata v4 document. */
export function addressFromMetadata(document: unknown): string | undefined {
  if (typeof document !== "object" || document === null) return undefined;
  const networks = (document as { Networks?: unknown }).Networks;
  if (!Array.isArray(networks)) return undefined;
  for (const network of networks) {
    const addresses = (network as { IPv4Addresses?: unknown } | null)?.IPv4Addresses;
    if (Array.isArray(addresses) && typeof addresses[0] === "string" && addresses[0] !== "")
      return addresses[0];
  }
  return undefined;
}

/** The advertised URL: `advertise` with the bound port when it names none. */
export function advertisedUrl(advertise: URL, boundPort: number): string {
  const url = new URL(advertise.href);
  if (url.port === "") url.port = String(boundPort);
  return url.origin;
}

export class AdvertiseError extends Error {
  override name = "AdvertiseError";
}

/** Reads the task's address from ECS_CONTAINER_METADATA_URI_V4; throws an AdvertiseError naming why not. */
export async function resolveAutoAddress(metadataUri: string, timeoutMs: number): Promise<string> {
  let body: unknown;
  let url: URL;
  try {
    url = new URL(metadataUri);
  } catch {
    throw new AdvertiseError(`ECS_CONTAINER_METADATA_URI_V4 is not a URL: ${metadataUri}`);
  }
  // One request at start-up: a Client of its own, closed after.
  const client = new Client(url.origin, { connect: { timeout: timeoutMs } });
  try {
    const response = await client.request({
      path: `${url.pathname}${url.search}`,
      method: "GET",
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new AdvertiseError(`the task metadata endpoint answered ${response.statusCode}`);
    }
    body = await response.body.json();
  } catch (error) {
    if (error instanceof AdvertiseError) throw error;
    throw new AdvertiseError(`the task metadata endpoint failed: ${(error as Error).message}`);
  } finally {
    void client.close().catch(() => {});
  }
  const address = addressFromMetadata(body);
  if (address === undefined)
    throw new AdvertiseError(
      "the task metadata has no Networks[].IPv4Addresses (is the task in awsvpc mode?)",
    );
  return address;
}
