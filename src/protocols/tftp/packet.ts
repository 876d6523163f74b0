/**
 * TFTP packets (RFC 1350, OACK from RFC 2347). Decoding is for untrusted datagrams:
 * every length is checked and a bad packet is a TftpDecodeError, never an out-of-bounds read.
 */
export const enum Opcode {
  Rrq = 1,
  Wrq = 2,
  Data = 3,
  Ack = 4,
  Error = 5,
  Oack = 6,
}

export const enum TftpErrorCode {
  NotDefined = 0,
  FileNotFound = 1,
  AccessViolation = 2,
  DiskFull = 3,
  IllegalOperation = 4,
  UnknownTid = 5,
  FileExists = 6,
  NoSuchUser = 7,
  OptionRefused = 8,
}

export type Mode = 'octet' | 'netascii' | 'mail';

export interface RequestPacket {
  readonly opcode: Opcode.Rrq | Opcode.Wrq;
  readonly filename: string;
  readonly mode: Mode;
  /** Option names lower-cased; values as sent. In the order the client sent them. */
  readonly options: ReadonlyMap<string, string>;
}
export interface DataPacket {
  readonly opcode: Opcode.Data;
  readonly block: number;
  readonly data: Buffer;
}
export interface AckPacket {
  readonly opcode: Opcode.Ack;
  readonly block: number;
}
export interface ErrorPacket {
  readonly opcode: Opcode.Error;
  readonly code: number;
  readonly message: string;
}
export interface OackPacket {
  readonly opcode: Opcode.Oack;
  readonly options: ReadonlyMap<string, string>;
}
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export class TftpDecodeError extends Error {
  override readonly name: string = 'TftpDecodeError';
}

/** A well-formed request in a mode RFC 1350 does not define: answered with ERROR 4, not dropped. */
export class TftpUnknownModeError extends TftpDecodeError {
  override readonly name = 'TftpUnknownModeError';
}

/** Reads NUL-terminated strings; a string that runs off the end is an error. */
function readStrings(buf: Buffer, offset: number): string[] {
  const strings: string[] = [];
  while (offset < buf.length) {
    const end = buf.indexOf(0, offset);
    if (end < 0) throw new TftpDecodeError('string not NUL-terminated');
    strings.push(buf.toString('latin1', offset, end));
    offset = end + 1;
  }
  return strings;
}

function readOptions(strings: readonly string[]): Map<string, string> {
  if (strings.length % 2 !== 0) throw new TftpDecodeError('option without a value');
  const options = new Map<string, string>();
  for (let i = 0; i < strings.length; i += 2) {
    const name = strings[i]!.toLowerCase();
    if (name === '') throw new TftpDecodeError('empty option name');
    if (!options.has(name)) options.set(name, strings[i + 1]!); // RFC 2347: first occurrence wins
  }
  return options;
}

export function decodePacket(buf: Buffer): TftpPacket {
  if (buf.length < 4) throw new TftpDecodeError(`packet of ${buf.length} bytes is too short`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.Rrq:
    case Opcode.Wrq: {
      const [filename, mode, ...rest] = readStrings(buf, 2);
      if (filename === undefined || mode === undefined) throw new TftpDecodeError('request lacks filename or mode');
      const lowerMode = mode.toLowerCase();
      if (lowerMode !== 'octet' && lowerMode !== 'netascii' && lowerMode !== 'mail')
        throw new TftpUnknownModeError(`unknown mode "${mode.slice(0, 32)}"`);
      return { opcode, filename, mode: lowerMode, options: readOptions(rest) };
    }
    case Opcode.Data:
      return { opcode, block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.Ack:
      if (buf.length !== 4) throw new TftpDecodeError(`ACK of ${buf.length} bytes`);
      return { opcode, block: buf.readUInt16BE(2) };
    case Opcode.Error: {
      const [message] = buf.length > 4 ? readStrings(buf, 4) : [''];
      return { opcode, code: buf.readUInt16BE(2), message: message ?? '' };
    }
    case Opcode.Oack:
      return { opcode, options: readOptions(readStrings(buf, 2)) };
    default:
      throw new TftpDecodeError(`unknown opcode ${opcode}`);
  }
}

export function encodeData(block: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  out.writeUInt16BE(Opcode.Data, 0);
  out.writeUInt16BE(block & 0xffff, 2);
  data.copy(out, 4);
  return out;
}

export function encodeAck(block: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt16BE(Opcode.Ack, 0);
  out.writeUInt16BE(block & 0xffff, 2);
  return out;
}

export function encodeError(code: TftpErrorCode, message: string): Buffer {
  const text = Buffer.from(message, 'latin1');
  const out = Buffer.alloc(5 + text.length);
  out.writeUInt16BE(Opcode.Error, 0);
  out.writeUInt16BE(code, 2);
  text.copy(out, 4);
  return out;
}

export function encodeOack(options: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, Opcode.Oack])];
  for (const [name, value] of options) parts.push(Buffer.from(`${name}\0${value}\0`, 'latin1'));
  return Buffer.concat(parts);
}

export function encodeRequest(
  opcode: Opcode.Rrq | Opcode.Wrq,
  filename: string,
  mode: Mode,
  options: ReadonlyMap<string, string> = new Map(),
): Buffer {
  const parts = [Buffer.from([0, opcode]), Buffer.from(`${filename}\0${mode}\0`, 'latin1')];
  for (const [name, value] of options) parts.push(Buffer.from(`${name}\0${value}\0`, 'latin1'));
  return Buffer.concat(parts);
}
