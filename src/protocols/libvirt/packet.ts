/**
 * libvirt RPC packets (src/rpc/virnetprotocol.x): a 4-byte big-endian length that counts itself,
 * a header of six 32-bit words, then the XDR body. PacketFramer turns a byte stream (partial and
 * coalesced reads alike) into whole packets, refusing lengths no real packet has.
 */
export const enum MessageKind {
  Call = 0,
  Reply = 1,
  Message = 2,
  Stream = 3,
  CallWithFds = 4,
  ReplyWithFds = 5,
  StreamHole = 6,
}

export const enum MessageStatus {
  Ok = 0,
  Error = 1,
  Continue = 2,
}

export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROGRAM = 0x6b656570;
export const KEEPALIVE_PROTOCOL_VERSION = 1;
/** virnetprotocol.x: VIR_NET_MESSAGE_MAX (32 MiB in current libvirt). */
export const MESSAGE_MAX = 33_554_432;
export const HEADER_LENGTH = 24;
const LENGTH_WORD = 4;

export interface PacketHeader {
  readonly program: number;
  readonly version: number;
  readonly procedure: number;
  readonly type: MessageKind;
  readonly serial: number;
  readonly status: MessageStatus;
}

export interface Packet {
  readonly header: PacketHeader;
  readonly body: Buffer;
}

export class PacketError extends Error {
  override readonly name = 'PacketError';
}

export function encodePacket(header: PacketHeader, body: Buffer = Buffer.alloc(0)): Buffer {
  const total = LENGTH_WORD + HEADER_LENGTH + body.length;
  if (total > MESSAGE_MAX) throw new PacketError(`packet of ${total} bytes exceeds ${MESSAGE_MAX}`);
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(header.program >>> 0, 4);
  out.writeUInt32BE(header.version >>> 0, 8);
  out.writeInt32BE(header.procedure, 12);
  out.writeInt32BE(header.type, 16);
  out.writeUInt32BE(header.serial >>> 0, 20);
  out.writeInt32BE(header.status, 24);
  body.copy(out, 28);
  return out;
}

/** Decodes one whole packet (length word included). */
export function decodePacket(buf: Buffer): Packet {
  if (buf.length < LENGTH_WORD + HEADER_LENGTH)
    throw new PacketError(`packet of ${buf.length} bytes is shorter than its header`);
  const total = buf.readUInt32BE(0);
  if (total !== buf.length) throw new PacketError(`packet says ${total} bytes, has ${buf.length}`);
  return {
    header: {
      program: buf.readUInt32BE(4),
      version: buf.readUInt32BE(8),
      procedure: buf.readInt32BE(12),
      type: buf.readInt32BE(16) as MessageKind,
      serial: buf.readUInt32BE(20),
      status: buf.readInt32BE(24) as MessageStatus,
    },
    body: buf.subarray(28),
  };
}

/** Accumulates stream chunks and yields each whole packet once all its bytes are in. */
export class PacketFramer {
  #chunks: Buffer[] = [];
  #buffered = 0;

  push(chunk: Buffer): Packet[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const packets: Packet[] = [];
    for (;;) {
      if (this.#buffered < LENGTH_WORD) break;
      const head = this.#peek(LENGTH_WORD);
      const total = head.readUInt32BE(0);
      if (total < LENGTH_WORD + HEADER_LENGTH || total > MESSAGE_MAX)
        throw new PacketError(`stream announces a packet of ${total} bytes`);
      if (this.#buffered < total) break;
      packets.push(decodePacket(this.#take(total)));
    }
    return packets;
  }

  #peek(bytes: number): Buffer {
    if (this.#chunks[0]!.length >= bytes) return this.#chunks[0]!;
    return Buffer.concat(this.#chunks).subarray(0, bytes);
  }

  #take(bytes: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const packet = Buffer.from(all.subarray(0, bytes));
    const rest = all.subarray(bytes);
    this.#chunks = rest.length ? [rest] : [];
    this.#buffered = rest.length;
    return packet;
  }
}
