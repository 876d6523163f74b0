/**
 * DHCP options as raw bytes, decoded on demand (RFC 2132). Repeated options are concatenated and
 * long ones split on encoding (RFC 3396), so unknown options round-trip untouched. Option 82
 * (relay agent information) is always encoded last, as RFC 3046 §2.1 asks.
 */
export const enum OptionCode {
  Pad = 0,
  SubnetMask = 1,
  Router = 3,
  DomainNameServer = 6,
  HostName = 12,
  DomainName = 15,
  BroadcastAddress = 28,
  VendorSpecific = 43,
  RequestedIp = 50,
  LeaseTime = 51,
  Overload = 52,
  MessageType = 53,
  ServerId = 54,
  ParameterRequestList = 55,
  Message = 56,
  MaxMessageSize = 57,
  RenewalTime = 58,
  RebindingTime = 59,
  VendorClass = 60,
  ClientId = 61,
  TftpServerName = 66,
  BootFileName = 67,
  UserClass = 77,
  RelayAgentInfo = 82,
  ClientArch = 93,
  ClientNdi = 94,
  ClientMachineId = 97,
  IpxeEncapsulated = 175,
  End = 255,
}

export class DhcpOptions {
  readonly #raw = new Map<number, Buffer>();

  /** Appends (RFC 3396: a repeated option continues the earlier one). */
  append(code: number, value: Buffer): this {
    const before = this.#raw.get(code);
    this.#raw.set(code, before ? Buffer.concat([before, value]) : Buffer.from(value));
    return this;
  }

  set(code: number, value: Buffer): this {
    this.#raw.set(code, Buffer.from(value));
    return this;
  }

  get(code: number): Buffer | undefined {
    return this.#raw.get(code);
  }

  has(code: number): boolean {
    return this.#raw.has(code);
  }

  delete(code: number): void {
    this.#raw.delete(code);
  }

  codes(): number[] {
    return [...this.#raw.keys()];
  }

  entries(): [number, Buffer][] {
    return [...this.#raw.entries()];
  }

  /** The same options (sharing their values) ordered by `rank`, lowest first; equal ranks keep their order. */
  reordered(rank: (code: number, index: number) => number): DhcpOptions {
    const entries = [...this.#raw.entries()].map(([code, value], i) => ({ code, value, key: rank(code, i) }));
    entries.sort((a, b) => a.key - b.key);
    const options = new DhcpOptions();
    for (const { code, value } of entries) options.#raw.set(code, value);
    return options;
  }

  get size(): number {
    return this.#raw.size;
  }

  /** Encoded as TLVs (split per RFC 3396), option 82 last, ending with END. */
  encode(): Buffer {
    const out = Buffer.allocUnsafe(this.encodingLength());
    this.encodeInto(out, 0);
    return out;
  }

  /** encode() written into `out` at `offset` (which has encodingLength() bytes free); returns the end. */
  encodeInto(out: Buffer, offset: number): number {
    let at = offset;
    const put = (code: number, value: Buffer) => {
      if (value.length === 0) {
        out[at++] = code;
        out[at++] = 0;
        return;
      }
      for (let start = 0; start < value.length; start += 255) {
        const length = Math.min(255, value.length - start);
        out[at++] = code;
        out[at++] = length;
        value.copy(out, at, start, start + length);
        at += length;
      }
    };
    for (const [code, value] of this.#raw) if (code !== OptionCode.RelayAgentInfo) put(code, value);
    const relayInfo = this.#raw.get(OptionCode.RelayAgentInfo);
    if (relayInfo) put(OptionCode.RelayAgentInfo, relayInfo);
    out[at++] = OptionCode.End;
    return at;
  }

  encodingLength(): number {
    let length = 1;
    for (const value of this.#raw.values())
      length += value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255);
    return length;
  }
}

export class DhcpDecodeError extends Error {
  override readonly name = 'DhcpDecodeError';
}

/**
 * Reads TLVs from buf[start, end) into options. Stops at END; a TLV running past the end is an error.
 * Returns true when an END was found.
 */
export function readOptions(buf: Buffer, start: number, end: number, into: DhcpOptions): boolean {
  let offset = start;
  while (offset < end) {
    const code = buf[offset]!;
    if (code === OptionCode.Pad) {
      offset += 1;
      continue;
    }
    if (code === OptionCode.End) return true;
    if (offset + 1 >= end) throw new DhcpDecodeError(`option ${code} has no length byte`);
    const length = buf[offset + 1]!;
    if (offset + 2 + length > end) throw new DhcpDecodeError(`option ${code} of ${length} bytes runs past the end`);
    into.append(code, buf.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  return false;
}
