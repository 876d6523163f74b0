/**
 * DHCPv4 / BOOTP packets (RFC 2131 §2, RFC 951). Decoding is for untrusted datagrams: every
 * length is checked, and a malformed packet is a DhcpDecodeError that the server counts and drops.
 */
import { formatIpv4, ipv4FromBytes, toIpv4 } from '../ipv4.ts';
import { DhcpDecodeError, DhcpOptions, OptionCode, readOptions } from './options.ts';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HEADER_LENGTH = 236;
export const MAGIC_COOKIE = 0x63825363;
/** RFC 951/1542: BOOTP relays and old clients expect at least a 300-byte packet. */
export const MIN_PACKET_LENGTH = 300;
export const BROADCAST_FLAG = 0x8000;

export const enum MessageType {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  // Dotted quads, readable in tools and tests; a server's policy reads them once, as numbers,
  // through accessors.ts (requestAddresses).
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The 16-byte client hardware address field as sent. */
  chaddr: Buffer;
  /** Server host name field (sname), NUL-trimmed; may hold options under option 52 overload. */
  sname: string;
  /** Boot file name field (file), NUL-trimmed. */
  file: string;
  options: DhcpOptions;
}

const ip = (buf: Buffer, at: number) => formatIpv4(ipv4FromBytes(buf, at));
const writeIp = (buf: Buffer, at: number, text: string) => buf.writeUInt32BE(toIpv4(text), at);
const cstring = (buf: Buffer, start: number, length: number) => {
  const field = buf.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? length : nul);
};

export function decodePacket(buf: Buffer): DhcpPacket {
  if (buf.length < HEADER_LENGTH + 4)
    throw new DhcpDecodeError(`packet of ${buf.length} bytes is shorter than a BOOTP header and cookie`);
  if (buf.readUInt32BE(HEADER_LENGTH) !== MAGIC_COOKIE) throw new DhcpDecodeError('no DHCP magic cookie');
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpDecodeError(`bad op ${op}`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError(`hardware address length ${hlen} > 16`);
  const options = new DhcpOptions();
  readOptions(buf, HEADER_LENGTH + 4, buf.length, options);
  // RFC 2132 §9.3: option 52 says the file (1), sname (2) or both (3) fields carry more options.
  const overload = options.get(OptionCode.Overload)?.[0] ?? 0;
  if (overload & 1) readOptions(buf, 108, 236, options);
  if (overload & 2) readOptions(buf, 44, 108, options);
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ip(buf, 12),
    yiaddr: ip(buf, 16),
    siaddr: ip(buf, 20),
    giaddr: ip(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname: overload & 2 ? '' : cstring(buf, 44, 64),
    file: overload & 1 ? '' : cstring(buf, 108, 128),
    options,
  };
}

export function encodePacket(packet: DhcpPacket): Buffer {
  const optionsLength = packet.options.encodingLength();
  const out = Buffer.alloc(Math.max(MIN_PACKET_LENGTH, HEADER_LENGTH + 4 + optionsLength));
  out[0] = packet.op;
  out[1] = packet.htype;
  out[2] = packet.hlen;
  out[3] = packet.hops;
  out.writeUInt32BE(packet.xid >>> 0, 4);
  out.writeUInt16BE(packet.secs, 8);
  out.writeUInt16BE(packet.flags, 10);
  writeIp(out, 12, packet.ciaddr);
  writeIp(out, 16, packet.yiaddr);
  writeIp(out, 20, packet.siaddr);
  writeIp(out, 24, packet.giaddr);
  packet.chaddr.copy(out, 28, 0, 16);
  if (Buffer.byteLength(packet.sname, 'latin1') > 63) throw new RangeError('sname longer than 63 bytes');
  if (Buffer.byteLength(packet.file, 'latin1') > 127) throw new RangeError('file longer than 127 bytes');
  if (packet.sname) out.write(packet.sname, 44, 'latin1');
  if (packet.file) out.write(packet.file, 108, 'latin1');
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  packet.options.encodeInto(out, HEADER_LENGTH + 4);
  return out;
}

/** The client's MAC (Ethernet) as aa:bb:cc:dd:ee:ff, or undefined for other hardware types. */
export function clientMac(packet: DhcpPacket): string | undefined {
  if (packet.htype !== 1 || packet.hlen !== 6) return undefined;
  const c = packet.chaddr;
  if (c.length < 6) return [...c].map((b) => HEX[b]).join(':');
  return `${HEX[c[0]!]}:${HEX[c[1]!]}:${HEX[c[2]!]}:${HEX[c[3]!]}:${HEX[c[4]!]}:${HEX[c[5]!]}`;
}

/** Two lower-case hex digits of each byte value (clientMac runs several times per packet). */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function messageType(packet: DhcpPacket): MessageType | undefined {
  const value = packet.options.get(OptionCode.MessageType);
  return value?.length === 1 && value[0]! >= 1 && value[0]! <= 8 ? (value[0] as MessageType) : undefined;
}
