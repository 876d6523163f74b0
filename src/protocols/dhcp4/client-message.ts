/**
 * The one builder of a DHCP client's message (DISCOVER, REQUEST, DECLINE, RELEASE, INFORM) for the
 * tests, the bench and the chaos machines: header fields and options from a typed spec, each option
 * encoded by its codec in option-codecs.ts. What no typed field covers (or a value of the wrong
 * shape, to test a server with) goes in `options` as raw bytes.
 */
import { parseIpv4, toIpv4 } from '../ipv4.ts';
import { codeList, ipv4, subOptions, text, u16, u16List, u8, userClass, type OptionCodec } from './option-codecs.ts';
import { DhcpOptions, OptionCode } from './options.ts';
import { BOOTREQUEST, BROADCAST_FLAG, HEADER_LENGTH, MessageType, type DhcpPacket } from './packet.ts';

export type ClientMessageType =
  MessageType.Discover | MessageType.Request | MessageType.Decline | MessageType.Release | MessageType.Inform;

/**
 * The longest message built: one Ethernet frame (1500) less the IPv4 (20) and UDP (8) headers. A
 * server must take at least 576 bytes (RFC 2131 §2); beyond a frame the datagram is fragmented,
 * which no firmware does.
 */
export const MAX_CLIENT_MESSAGE_LENGTH = 1472;

export interface ClientMessageSpec {
  /** aa:bb:cc:dd:ee:ff (or with '-', or none): chaddr, htype 1, hlen 6. */
  readonly mac: string;
  /** Random when absent. */
  readonly xid?: number;
  readonly secs?: number;
  /** 1 for a message a relay forwarded. */
  readonly hops?: number;
  readonly broadcast?: boolean;
  readonly ciaddr?: string;
  readonly giaddr?: string;
  /** Option 50. */
  readonly requestedIp?: string;
  /** Option 54: the server selected. */
  readonly serverId?: string;
  /** Option 61, type byte included (1 + MAC for Ethernet, 255 + IAID + DUID for RFC 4361). */
  readonly clientId?: Buffer;
  /** Option 12. */
  readonly hostName?: string;
  /** Option 55, in the client's order of preference. */
  readonly parameterRequestList?: readonly number[];
  /** Option 57. */
  readonly maxMessageSize?: number;
  /** Option 60, e.g. 'PXEClient:Arch:00000:UNDI:002001'. */
  readonly vendorClass?: string;
  /**
   * Option 77: a string is sent bare, as iPXE sends 'iPXE'; a list as RFC 3004 length-prefixed items.
   */
  readonly userClass?: string | readonly string[];
  /** Option 93 (RFC 4578): 0 BIOS, 7 and 9 UEFI x64, 16 UEFI HTTP boot, ... */
  readonly arch?: number | readonly number[];
  /** Option 82 sub-options (1 circuit id, 2 remote id), as a relay adds them; always encoded last. */
  readonly relayAgentInfo?: ReadonlyMap<number, Buffer>;
  /** Raw options, after the typed ones, in this order; a code may appear once, and not as a typed field too. */
  readonly options?: readonly (readonly [number, Buffer])[];
}

export class ClientMessageError extends RangeError {
  override readonly name = 'ClientMessageError';
}

export function buildClientMessage(type: ClientMessageType, spec: ClientMessageSpec): DhcpPacket {
  const options = new DhcpOptions();
  const put = <T>(code: OptionCode, codec: OptionCodec<T>, value: T | undefined) => {
    if (value !== undefined) options.set(code, codec.encode(value));
  };
  put(OptionCode.MessageType, u8, type);
  if (spec.requestedIp !== undefined)
    put(OptionCode.RequestedIp, ipv4, toIpv4(address('requestedIp', spec.requestedIp)));
  if (spec.serverId !== undefined) put(OptionCode.ServerId, ipv4, toIpv4(address('serverId', spec.serverId)));
  if (spec.clientId !== undefined) {
    if (spec.clientId.length < 2)
      throw new ClientMessageError('a client identifier is a type byte and at least one more');
    options.set(OptionCode.ClientId, spec.clientId);
  }
  put(OptionCode.HostName, text, spec.hostName);
  put(
    OptionCode.ParameterRequestList,
    codeList,
    spec.parameterRequestList?.map((c) => field('requested option', c, 255)),
  );
  put(OptionCode.MaxMessageSize, u16, spec.maxMessageSize);
  put(OptionCode.VendorClass, text, spec.vendorClass);
  if (typeof spec.userClass === 'string') put(OptionCode.UserClass, text, spec.userClass);
  else
    put(
      OptionCode.UserClass,
      userClass,
      spec.userClass?.map((item) => sized('user class item', item, 'latin1')),
    );
  put(OptionCode.ClientArch, u16List, typeof spec.arch === 'number' ? [spec.arch] : spec.arch?.slice());
  for (const [code, value] of spec.options ?? []) {
    if (!Number.isInteger(code) || code <= OptionCode.Pad || code >= OptionCode.End)
      throw new ClientMessageError(`option code ${code} is not 1..254`);
    if (options.has(code)) throw new ClientMessageError(`option ${code} given twice (as a typed field or raw)`);
    options.set(code, value);
  }
  // Last, as DhcpOptions encodes it (RFC 3046 §2.1), so the packet reads in wire order.
  if (spec.relayAgentInfo !== undefined) {
    if (options.has(OptionCode.RelayAgentInfo))
      throw new ClientMessageError('option 82 given twice (as a typed field or raw)');
    const relay = [...spec.relayAgentInfo].map(
      ([code, data]) => [field('sub-option', code, 254), sized(`sub-option ${code}`, data)] as const,
    );
    put(OptionCode.RelayAgentInfo, subOptions, new Map(relay));
  }
  const length = HEADER_LENGTH + 4 + options.encodingLength();
  if (length > MAX_CLIENT_MESSAGE_LENGTH)
    throw new ClientMessageError(
      `a message of ${length} bytes (${options.size} options) exceeds ${MAX_CLIENT_MESSAGE_LENGTH}, one Ethernet frame`,
    );
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: field('hops', spec.hops ?? 0, 0xff),
    xid: field('xid', spec.xid ?? Math.floor(Math.random() * 0x1_0000_0000), 0xffff_ffff),
    secs: field('secs', spec.secs ?? 0, 0xffff),
    flags: spec.broadcast ? BROADCAST_FLAG : 0,
    ciaddr: address('ciaddr', spec.ciaddr),
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: address('giaddr', spec.giaddr),
    chaddr: Buffer.concat([macBytes(spec.mac), Buffer.alloc(10)]),
    sname: '',
    file: '',
    options,
  };
}

function field(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw new ClientMessageError(`${name} ${value} is not 0..${max}`);
  return value;
}

/** An item behind a one-byte length (RFC 3004 items, option 82 sub-options): 1..255 bytes. */
function sized<T extends string | Buffer>(name: string, value: T, encoding?: 'latin1'): T {
  const length = typeof value === 'string' ? Buffer.byteLength(value, encoding) : value.length;
  if (length < 1 || length > 255) throw new ClientMessageError(`${name} of ${length} bytes is not 1..255`);
  return value;
}

/** Checked here so that a typo fails when the message is built, not when it is encoded. */
function address(name: string, value = '0.0.0.0'): string {
  if (parseIpv4(value) === undefined)
    throw new ClientMessageError(`${name} ${JSON.stringify(value)} is not an IPv4 address`);
  return value;
}

function macBytes(mac: string): Buffer {
  if (!/^([0-9a-f]{2}[:-]?){5}[0-9a-f]{2}$/i.test(mac)) throw new ClientMessageError(`bad MAC ${JSON.stringify(mac)}`);
  return Buffer.from(mac.replace(/[:-]/g, ''), 'hex');
}
