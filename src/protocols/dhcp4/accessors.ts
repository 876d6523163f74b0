/**
 * Typed reads of the request fields the DHCP policy looks at. Each returns undefined (or null)
 * for an absent or malformed value rather than throwing: the packet is untrusted.
 */
import { ipv4FromBytes, toIpv4, UNSPECIFIED, type Ipv4 } from '../ipv4.ts';
import { OptionCode } from './options.ts';
import { clientMac, type DhcpPacket } from './packet.ts';

function address(packet: DhcpPacket, code: number): Ipv4 | undefined {
  const value = packet.options.get(code);
  return value?.length === 4 ? ipv4FromBytes(value) : undefined;
}

/** Option 50. */
export const requestedIp = (packet: DhcpPacket): Ipv4 | undefined => address(packet, OptionCode.RequestedIp);
/** Option 54: the server the client selected. */
export const serverId = (packet: DhcpPacket): Ipv4 | undefined => address(packet, OptionCode.ServerId);

/** The addresses of a request the policy looks at, read once (UNSPECIFIED when absent). */
export interface RequestAddresses {
  readonly ciaddr: Ipv4;
  readonly giaddr: Ipv4;
  readonly requested: Ipv4 | undefined;
  readonly server: Ipv4 | undefined;
}

export function requestAddresses(packet: DhcpPacket): RequestAddresses {
  return {
    ciaddr: toIpv4(packet.ciaddr),
    giaddr: toIpv4(packet.giaddr),
    requested: requestedIp(packet),
    server: serverId(packet),
  };
}

/** Option 61 as hex (type byte included), or null. */
export function clientIdHex(packet: DhcpPacket): string | null {
  const value = packet.options.get(OptionCode.ClientId);
  return value && value.length >= 2 ? value.toString('hex') : null;
}

/**
 * Who a lease belongs to (RFC 2131 §4.2): the client identifier when the client sends one, else
 * its hardware address. The two forms cannot collide (hex digits vs. colon-separated MAC).
 */
export function clientKey(packet: DhcpPacket): string | undefined {
  return clientIdHex(packet) ?? clientMac(packet);
}

/** Option 55, in the client's order of preference (RFC 2132 §9.8). */
export function parameterRequestList(packet: DhcpPacket): number[] {
  return [...(packet.options.get(OptionCode.ParameterRequestList) ?? [])];
}

/**
 * Option 12 as text safe to store: printable ASCII only (a host name is letters, digits, '-' and
 * '.'; RFC 1123), at most 63 characters. NUL and other control bytes, which PostgreSQL text
 * refuses or a log would misrender, are dropped. null when nothing usable is left.
 */
export function hostName(packet: DhcpPacket): string | null {
  const value = packet.options.get(OptionCode.HostName);
  if (!value) return null;
  const clean = value
    .toString('latin1')
    .replace(/[^\x21-\x7e]/g, '')
    .slice(0, 63);
  return clean || null;
}

/** REQUEST states (RFC 2131 §4.3.2), told from the request's addresses (see requestAddresses). */
export type RequestState = 'selecting' | 'init-reboot' | 'renewing';

export function requestState(at: Pick<RequestAddresses, 'server' | 'ciaddr'>): RequestState {
  if (at.server !== undefined) return 'selecting';
  if (at.ciaddr === UNSPECIFIED) return 'init-reboot';
  return 'renewing'; // or rebinding: same answer here
}
