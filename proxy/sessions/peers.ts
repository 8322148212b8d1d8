// Which sidecars a task may forward to: the SSRF guard of session routing. A token is sealed, so only
// a task of this deployment can have written the owner address in it; the guard still holds if the
// session key leaks: no request ever goes to an address outside --peer-cidrs, nor to a host name
// (which a resolver could point anywhere). node:net's BlockList does the prefix matching.

import { BlockList } from "node:net";
import { type Cidr, ipVersion } from "./cidr.ts";

export type { Cidr } from "./cidr.ts";

export class PeerGuard {
  readonly #allowed = new BlockList();
  /** The sidecars' port (every task of a service listens on the same one), once known. */
  #port: string | undefined;

  constructor(cidrs: readonly Cidr[]) {
    for (const cidr of cidrs) this.#allowed.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }

  /**
   * From now on only this port: a forward goes to a sidecar, never to another service inside the
   * CIDRs (a leaked key must not turn the sidecar into a proxy to any port of the VPC).
   */
  onlyPort(port: number): void {
    this.#port = String(port);
  }

  /** The origin to forward to, when `owner` is an http:// URL of an IP address inside the CIDRs. */
  originOf(owner: string): string | undefined {
    let url: URL;
    try {
      url = new URL(owner);
    } catch {
      return undefined;
    }
    if (url.protocol !== "http:") return undefined;
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const version = ipVersion(host);
    if (version === 0 || !this.#allowed.check(host, version === 4 ? "ipv4" : "ipv6")) return undefined;
    if (this.#port !== undefined && (url.port || "80") !== this.#port) return undefined;
    return url.origin;
  }
}
