/**
 * Building a server's reply to a request (RFC 2131 §4.3 table 3), with reply options in the order
 * the client asked for them (RFC 2132 §9.8). A client's message is built by client-message.ts.
 */
import { formatIpv4, UNSPECIFIED, type Ipv4 } from '../ipv4.ts';
import { ipv4 } from './option-codecs.ts';
import { DhcpOptions, OptionCode } from './options.ts';
import { BOOTREPLY, BROADCAST_FLAG, MessageType, type DhcpPacket } from './packet.ts';
import { parameterRequestList } from './accessors.ts';

/**
 * The skeleton of a reply: header fields copied from the request as RFC 2131 table 3 says,
 * options 53 and 54, and option 82 echoed unchanged (RFC 3046 §2.2).
 */
export function replyTo(request: DhcpPacket, type: MessageType, server: Ipv4, yiaddr: Ipv4 = UNSPECIFIED): DhcpPacket {
  const options = new DhcpOptions()
    .set(OptionCode.MessageType, Buffer.from([type]))
    .set(OptionCode.ServerId, ipv4.encode(server));
  const relayInfo = request.options.get(OptionCode.RelayAgentInfo);
  if (relayInfo) options.set(OptionCode.RelayAgentInfo, relayInfo);
  // A NAK through a relay must be broadcast by it (§4.3.2); set on every NAK, which costs nothing.
  const flags = type === MessageType.Nak ? request.flags | BROADCAST_FLAG : request.flags;
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags,
    ciaddr: type === MessageType.Ack ? request.ciaddr : '0.0.0.0',
    yiaddr: formatIpv4(yiaddr),
    siaddr: '0.0.0.0',
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: '',
    file: '',
    options,
  };
}

/**
 * Reorders a reply's options: 53 and 54 first, then those the client listed in option 55 in its
 * order, then the rest as they were (option 82 is always encoded last by DhcpOptions).
 */
export function inRequestedOrder(reply: DhcpPacket, request: DhcpPacket): DhcpPacket {
  const wanted = parameterRequestList(request);
  if (wanted.length === 0) return reply;
  const rank = new Map<number, number>([
    [OptionCode.MessageType, -2],
    [OptionCode.ServerId, -1],
  ]);
  wanted.forEach((code, i) => {
    if (!rank.has(code)) rank.set(code, i);
  });
  return { ...reply, options: reply.options.reordered((code, i) => rank.get(code) ?? wanted.length + i) };
}
