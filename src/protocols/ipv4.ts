/**
 * IPv4 addresses as unsigned 32-bit numbers — the one internal form, for the DHCP codecs and the
 * inventory alike: text (configuration, the store) and bytes (packets) are converted at the edges.
 * Strings are parsed strictly (dotted quad, no leading zeros, which some parsers read as octal)
 * so that "010.0.0.1" is an error, not 8.0.0.1.
 */
export type Ipv4 = number;

/** 0.0.0.0: "no address" in BOOTP fields (ciaddr, giaddr, …). */
export const UNSPECIFIED: Ipv4 = 0;

export interface Cidr {
  readonly network: Ipv4;
  readonly prefix: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

export function parseIpv4(text: string): Ipv4 | undefined {
  // By character codes (it runs several times per DHCP packet): four dot-separated octets, each
  // 0 or 1–3 digits without a leading zero, at most 255 — what OCTET says of each part.
  let value = 0;
  let parts = 0;
  let i = 0;
  const n = text.length;
  while (parts < 4) {
    const start = i;
    let octet = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + (c - 48);
      i += 1;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || (digits > 1 && text.charCodeAt(start) === 48) || octet > 255) return undefined;
    value = value * 256 + octet;
    parts += 1;
    if (parts < 4) {
      if (text.charCodeAt(i) !== 46) return undefined;
      i += 1;
    }
  }
  return i === n ? value : undefined;
}

/** parseIpv4 for text that must be an address (our configuration, a caller's argument): RangeError otherwise. */
export function toIpv4(text: string): Ipv4 {
  const ip = parseIpv4(text);
  if (ip === undefined) throw new RangeError(`bad IPv4 address ${JSON.stringify(text)}`);
  return ip;
}

/** Four bytes in network order at `at`; the caller has checked the length. */
export function ipv4FromBytes(buf: Uint8Array, at = 0): Ipv4 {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

export function ipv4ToBytes(ip: Ipv4): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(ip >>> 0);
  return out;
}

export function formatIpv4(ip: Ipv4): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

export function maskOf(prefix: number): Ipv4 {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "10.1.0.0/22". The address must be the network address (no host bits set). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const network = parseIpv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (network === undefined || !/^[0-9]{1,2}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  if ((network & ~maskOf(prefix)) >>> 0 !== 0) return undefined;
  return { network, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function broadcastOf(cidr: Cidr): Ipv4 {
  return (cidr.network | ~maskOf(cidr.prefix)) >>> 0;
}

export function cidrContains(cidr: Cidr, ip: Ipv4): boolean {
  return (ip & maskOf(cidr.prefix)) >>> 0 === cidr.network;
}

/** True when ip is a usable host address: inside the network and not its network or broadcast address (for prefixes < 31). */
export function isHostAddress(cidr: Cidr, ip: Ipv4): boolean {
  if (!cidrContains(cidr, ip)) return false;
  if (cidr.prefix >= 31) return true;
  return ip !== cidr.network && ip !== broadcastOf(cidr);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = maskOf(prefix);
  return (a.network & mask) >>> 0 === (b.network & mask) >>> 0;
}

export interface Ipv4Range {
  readonly start: Ipv4;
  readonly end: Ipv4;
}

export function rangeContains(range: Ipv4Range, ip: Ipv4): boolean {
  return ip >= range.start && ip <= range.end;
}

export function rangeSize(range: Ipv4Range): number {
  return range.end - range.start + 1;
}

/**
 * The lowest usable host address of the network for which `taken` is false (for static
 * assignments: callers exclude the gateway, the dynamic range and addresses in use).
 */
export function firstFreeHostAddress(cidr: Cidr, taken: (ip: Ipv4) => boolean): Ipv4 | undefined {
  const first = cidr.prefix >= 31 ? cidr.network : cidr.network + 1;
  const last = cidr.prefix >= 31 ? broadcastOf(cidr) : broadcastOf(cidr) - 1;
  for (let ip = first; ip <= last; ip++) if (!taken(ip >>> 0)) return ip >>> 0;
  return undefined;
}
