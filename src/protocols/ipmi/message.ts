/**
 * IPMI messages as carried over LAN (IPMI v2.0 §13.8, table 13-8): requester and responder
 * addresses, network function, a 6-bit request sequence that pairs an answer with its request, and
 * two two's-complement checksums. The BMC is responder 0x20; a remote console is software ID 0x81.
 */
import { Cursor, IpmiDecodeError } from './cursor.ts';

export const BMC_ADDRESS = 0x20;
export const CONSOLE_ADDRESS = 0x81;

export const enum NetFn {
  Chassis = 0x00,
  App = 0x06,
}

export interface IpmiRequest {
  readonly netFn: number;
  readonly cmd: number;
  readonly data: Buffer;
}

export interface IpmiResponse {
  readonly netFn: number;
  readonly cmd: number;
  readonly rqSeq: number;
  readonly completionCode: number;
  readonly data: Buffer;
}

/** Two's complement of the byte sum: the bytes plus their checksum sum to 0 mod 256. */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

export function encodeRequest(request: IpmiRequest, rqSeq: number): Buffer {
  const head = Buffer.from([BMC_ADDRESS, (request.netFn << 2) & 0xfc]);
  const body = Buffer.concat([Buffer.from([CONSOLE_ADDRESS, (rqSeq & 0x3f) << 2, request.cmd]), request.data]);
  return Buffer.concat([head, Buffer.from([checksum(head)]), body, Buffer.from([checksum(body)])]);
}

export function decodeResponse(bytes: Buffer): IpmiResponse {
  if (bytes.length < 8) throw new IpmiDecodeError(`an IPMI response is at least 8 bytes, not ${bytes.length}`);
  if (checksum(bytes.subarray(0, 2)) !== bytes[2]) throw new IpmiDecodeError('IPMI response header checksum mismatch');
  if (checksum(bytes.subarray(3, bytes.length - 1)) !== bytes[bytes.length - 1])
    throw new IpmiDecodeError('IPMI response data checksum mismatch');
  const c = new Cursor(bytes, 0, bytes.length - 1);
  if (c.u8('rqAddr') !== CONSOLE_ADDRESS)
    throw new IpmiDecodeError('IPMI response is not addressed to the remote console (0x81)');
  const netFn = c.u8('netFn') >> 2;
  c.u8('checksum');
  c.u8('rsAddr');
  const rqSeq = c.u8('rqSeq') >> 2;
  const cmd = c.u8('cmd');
  const completionCode = c.u8('completion code');
  return { netFn, cmd, rqSeq, completionCode, data: Buffer.from(c.rest()) };
}

/** Completion codes (IPMI v2.0 §5.2, table 5-2) worth naming in an error. */
export const COMPLETION_CODES: Readonly<Record<number, string>> = {
  0xc0: 'node busy',
  0xc1: 'invalid command',
  0xc3: 'timeout',
  0xc7: 'request data length invalid',
  0xc9: 'parameter out of range',
  0xcc: 'invalid data field in request',
  0xcd: 'command illegal for this sensor or record type',
  0xd4: 'insufficient privilege level',
  0xd5: 'command not supported in present state',
  0xff: 'unspecified error',
};
