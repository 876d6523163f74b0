/** Reads DHCP replies out of a classic pcap file written by tcpdump (Ethernet, IPv4, UDP). */
import { readFileSync } from 'node:fs';
import { decodePacket, messageType, clientMac, type DhcpPacket } from '../../src/protocols/dhcp4/packet.ts';

export function dhcpPacketsIn(path: string): DhcpPacket[] {
  const buf = readFileSync(path);
  if (buf.length < 24) return [];
  const little = buf.readUInt32LE(0) === 0xa1b2c3d4 || buf.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (at: number) => (little ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const packets: DhcpPacket[] = [];
  let offset = 24;
  while (offset + 16 <= buf.length) {
    const captured = u32(offset + 8);
    const frame = buf.subarray(offset + 16, offset + 16 + captured);
    offset += 16 + captured;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (frame[14]! & 0x0f) * 4;
    if (frame[14 + 9] !== 17) continue; // UDP
    const udp = frame.subarray(14 + ihl);
    try {
      packets.push(decodePacket(udp.subarray(8)));
    } catch {
      /* not DHCP */
    }
  }
  return packets;
}

/** (mac, ip) of every ACK in the capture. */
export function ackedLeases(path: string): { mac: string; ip: string }[] {
  return dhcpPacketsIn(path)
    .filter((p) => messageType(p) === 5 && p.yiaddr !== '0.0.0.0')
    .map((p) => ({ mac: clientMac(p)!, ip: p.yiaddr }));
}
