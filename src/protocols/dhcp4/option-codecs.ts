/**
 * Codecs for option values, one per kind (address, address list, integers, text, code list,
 * client-arch list, user-class, relay-agent sub-options). Each has encode, decode and
 * encodingLength; decode checks lengths and throws DhcpDecodeError on a value of the wrong shape.
 * OPTION_CODECS maps the options kvmfleet reads or writes to their codec; others stay raw bytes.
 */
import { ipv4FromBytes, ipv4ToBytes, type Ipv4 } from '../ipv4.ts';
import { DhcpDecodeError, OptionCode } from './options.ts';

export interface OptionCodec<T> {
  readonly kind: string;
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
  encodingLength(value: T): number;
}

/** An address option (1, 28, 50, 54): one address in the numeric form of ../ipv4.ts. */
export const ipv4: OptionCodec<Ipv4> = {
  kind: 'ipv4',
  encode: (value) => ipv4ToBytes(value),
  decode: (buf) => {
    if (buf.length !== 4) throw new DhcpDecodeError(`address option of ${buf.length} bytes`);
    return ipv4FromBytes(buf);
  },
  encodingLength: () => 4,
};

export const ipv4List: OptionCodec<Ipv4[]> = {
  kind: 'ipv4-list',
  encode: (value) => Buffer.concat(value.map(ipv4ToBytes)),
  decode: (buf) => {
    if (buf.length === 0 || buf.length % 4 !== 0) throw new DhcpDecodeError(`address list of ${buf.length} bytes`);
    const list: Ipv4[] = [];
    for (let i = 0; i < buf.length; i += 4) list.push(ipv4FromBytes(buf, i));
    return list;
  },
  encodingLength: (value) => value.length * 4,
};

function unsigned(bytes: 1 | 2 | 4): OptionCodec<number> {
  return {
    kind: `u${bytes * 8}`,
    encode: (value) => {
      const out = Buffer.alloc(bytes);
      out.writeUIntBE(value, 0, bytes);
      return out;
    },
    decode: (buf) => {
      if (buf.length !== bytes) throw new DhcpDecodeError(`${bytes}-byte option of ${buf.length} bytes`);
      return buf.readUIntBE(0, bytes);
    },
    encodingLength: () => bytes,
  };
}
export const u8 = unsigned(1);
export const u16 = unsigned(2);
export const u32 = unsigned(4);

export const text: OptionCodec<string> = {
  kind: 'text',
  encode: (value) => Buffer.from(value, 'latin1'),
  // Some clients NUL-terminate strings; the NUL is not part of the value.
  decode: (buf) => buf.toString('latin1').replace(/\0+$/, ''),
  encodingLength: (value) => Buffer.byteLength(value, 'latin1'),
};

export const codeList: OptionCodec<number[]> = {
  kind: 'code-list',
  encode: (value) => Buffer.from(value),
  decode: (buf) => [...buf],
  encodingLength: (value) => value.length,
};

/** Option 93 (RFC 4578): one or more 16-bit architecture types. */
export const u16List: OptionCodec<number[]> = {
  kind: 'u16-list',
  encode: (value) => {
    const out = Buffer.alloc(value.length * 2);
    value.forEach((v, i) => out.writeUInt16BE(v, i * 2));
    return out;
  },
  decode: (buf) => {
    if (buf.length === 0 || buf.length % 2 !== 0) throw new DhcpDecodeError(`16-bit list of ${buf.length} bytes`);
    const list: number[] = [];
    for (let i = 0; i < buf.length; i += 2) list.push(buf.readUInt16BE(i));
    return list;
  },
  encodingLength: (value) => value.length * 2,
};

/**
 * Option 77 user class. RFC 3004 wants length-prefixed items, but iPXE (and most firmware) send the
 * bare string "iPXE"; a value is read as RFC 3004 only when its lengths add up exactly.
 */
export const userClass: OptionCodec<string[]> = {
  kind: 'user-class',
  encode: (value) =>
    Buffer.concat(
      value.map((item) =>
        Buffer.concat([Buffer.from([Buffer.byteLength(item, 'latin1')]), Buffer.from(item, 'latin1')]),
      ),
    ),
  decode: (buf) => {
    const items: string[] = [];
    let offset = 0;
    while (offset < buf.length) {
      const length = buf[offset]!;
      if (length === 0 || offset + 1 + length > buf.length) return [buf.toString('latin1').replace(/\0+$/, '')];
      items.push(buf.toString('latin1', offset + 1, offset + 1 + length));
      offset += 1 + length;
    }
    return items.length ? items : [''];
  },
  encodingLength: (value) => value.reduce((n, item) => n + 1 + Buffer.byteLength(item, 'latin1'), 0),
};

/** Sub-options (code, length, value) as in option 82 (RFC 3046) and option 43 (PXE). */
export const subOptions: OptionCodec<Map<number, Buffer>> = {
  kind: 'sub-options',
  encode: (value) =>
    Buffer.concat([...value].map(([code, data]) => Buffer.concat([Buffer.from([code, data.length]), data]))),
  decode: (buf) => {
    const map = new Map<number, Buffer>();
    let offset = 0;
    while (offset < buf.length) {
      const code = buf[offset]!;
      if (code === 255) break;
      if (code === 0) {
        offset += 1;
        continue;
      }
      if (offset + 2 > buf.length) throw new DhcpDecodeError(`sub-option ${code} has no length byte`);
      const length = buf[offset + 1]!;
      if (offset + 2 + length > buf.length) throw new DhcpDecodeError(`sub-option ${code} runs past its option`);
      map.set(code, Buffer.from(buf.subarray(offset + 2, offset + 2 + length)));
      offset += 2 + length;
    }
    return map;
  },
  encodingLength: (value) => [...value.values()].reduce((n, data) => n + 2 + data.length, 0),
};

export const OPTION_CODECS: ReadonlyMap<number, OptionCodec<any>> = new Map<number, OptionCodec<any>>([
  [OptionCode.SubnetMask, ipv4],
  [OptionCode.Router, ipv4List],
  [OptionCode.DomainNameServer, ipv4List],
  [OptionCode.HostName, text],
  [OptionCode.DomainName, text],
  [OptionCode.BroadcastAddress, ipv4],
  [OptionCode.VendorSpecific, subOptions],
  [OptionCode.RequestedIp, ipv4],
  [OptionCode.LeaseTime, u32],
  [OptionCode.Overload, u8],
  [OptionCode.MessageType, u8],
  [OptionCode.ServerId, ipv4],
  [OptionCode.ParameterRequestList, codeList],
  [OptionCode.Message, text],
  [OptionCode.MaxMessageSize, u16],
  [OptionCode.RenewalTime, u32],
  [OptionCode.RebindingTime, u32],
  [OptionCode.VendorClass, text],
  [OptionCode.TftpServerName, text],
  [OptionCode.BootFileName, text],
  [OptionCode.UserClass, userClass],
  [OptionCode.RelayAgentInfo, subOptions],
  [OptionCode.ClientArch, u16List],
  [OptionCode.IpxeEncapsulated, subOptions],
]);
