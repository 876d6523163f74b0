/**
 * Where a reply goes (RFC 2131 §4.1). Without raw sockets we cannot unicast to an address the
 * client has not configured yet (no ARP entry), so direct replies without ciaddr are broadcast.
 */
import { MessageType, type DhcpPacket } from './packet.ts';

export interface Destination {
  readonly address: string;
  readonly port: number;
}

export const BROADCAST = '255.255.255.255';

export function replyDestination(request: DhcpPacket, type: MessageType): Destination {
  if (request.giaddr !== '0.0.0.0') return { address: request.giaddr, port: 67 };
  if (type === MessageType.Nak) return { address: BROADCAST, port: 68 };
  if (request.ciaddr !== '0.0.0.0') return { address: request.ciaddr, port: 68 };
  return { address: BROADCAST, port: 68 };
}
