// CIDR blocks and IP literals as flags give them. Pure: no node:net here (config/ stays free of
// socket modules); peers.ts matches addresses against the blocks.

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: "ipv4" | "ipv6";
  /** As written, for messages. */
  readonly label: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 or 6 for an IP address literal (IPv6 without brackets), 0 otherwise. */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (IPV4.test(text)) return 4;
  if (!text.includes(":") || /[^0-9a-fA-F:.]/.test(text)) return 0;
  try {
    // WHATWG URL parses IPv6 literals exactly (RFC 4291 forms, embedded IPv4 included).
    new URL(`http://[${text}]/`);
    return 6;
  } catch {
    return 0;
  }
}

/** `10.0.0.0/16`, `127.0.0.0/8`, `fd00::/8`; a bare address is a /32 (or /128). A message when not. */
export function parseCidr(raw: string): Cidr | string {
  const text = raw.trim();
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = ipVersion(address);
  if (version === 0) return `"${raw}" is not an IP address or CIDR block (e.g. 10.0.0.0/16)`;
  const max = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return `"${raw}": the prefix length must be 0-${max}`;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6", label: text };
}
