/**
 * RMCP / RMCP+ framing (IPMI v2.0 §13.1–13.6): the 4-byte RMCP header, then either an IPMI v1.5
 * session header (used here only for the pre-session Get Channel Authentication Capabilities, as
 * ipmitool does, so a v1.5-only BMC still answers) or an IPMI v2.0 session header with payload type,
 * session ID, sequence number, payload and — once a session is active — the integrity trailer
 * (pad to a multiple of 4, pad length, next header 0x07, AuthCode) and an AES-CBC-128 encrypted
 * payload (16-byte IV, data, pad 1..n, pad length). Pure functions: keys in, bytes out.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Cursor, IpmiDecodeError, u16le, u32le } from './cursor.ts';

/** RMCP version 1.0, reserved, sequence 0xFF (no RMCP ACK wanted), class IPMI (§13.1.3). */
export const RMCP_IPMI_HEADER = Buffer.from([0x06, 0x00, 0xff, 0x07]);
const AUTH_TYPE_NONE = 0x00;
const AUTH_FORMAT_RMCPP = 0x06;
const NEXT_HEADER = 0x07;
const ENCRYPTED = 0x80;
const AUTHENTICATED = 0x40;
const AES_BLOCK = 16;
/** No datagram of this client's conversations comes near it; a larger one is refused before parsing. */
export const MAX_DATAGRAM = 1024;

export const enum PayloadType {
  Ipmi = 0x00,
  OpenSessionRequest = 0x10,
  OpenSessionResponse = 0x11,
  Rakp1 = 0x12,
  Rakp2 = 0x13,
  Rakp3 = 0x14,
  Rakp4 = 0x15,
}

export interface IntegrityKey {
  readonly hash: 'sha1' | 'sha256';
  /** Bytes of the HMAC kept as the AuthCode: 12 for HMAC-SHA1-96, 16 for HMAC-SHA256-128. */
  readonly length: number;
  /** K1 */
  readonly key: Buffer;
}

/** An active session's keys; absent before RAKP 4 (then nothing is signed or encrypted). */
export interface SessionKeys {
  readonly integrity: IntegrityKey;
  /** The first 16 bytes of K2 (AES-CBC-128, §13.29). */
  readonly aesKey: Buffer;
}

export interface V2Packet {
  readonly payloadType: number;
  readonly sessionId: number;
  readonly sequence: number;
  readonly payload: Buffer;
  readonly authenticated: boolean;
  readonly encrypted: boolean;
}

export type Decoded =
  | { readonly format: 'v1.5'; readonly sessionId: number; readonly sequence: number; readonly message: Buffer }
  | ({ readonly format: 'v2' } & V2Packet);

/** A pre-session IPMI v1.5 packet, authentication type none (§13.6, table 13-4). */
export function encodeV15(message: Buffer): Buffer {
  if (message.length > 255) throw new RangeError('an IPMI v1.5 message is at most 255 bytes');
  return Buffer.concat([
    RMCP_IPMI_HEADER,
    Buffer.from([AUTH_TYPE_NONE]),
    u32le(0),
    u32le(0),
    Buffer.from([message.length]),
    message,
  ]);
}

export function encrypt(aesKey: Buffer, plaintext: Buffer, iv: Buffer = randomBytes(AES_BLOCK)): Buffer {
  // Confidentiality pad bytes are 1, 2, 3 … n, then n, so that the whole is a multiple of 16 (§13.29.1).
  const n = (AES_BLOCK - ((plaintext.length + 1) % AES_BLOCK)) % AES_BLOCK;
  const padded = Buffer.concat([plaintext, Buffer.from(Array.from({ length: n }, (_, i) => i + 1)), Buffer.from([n])]);
  const cipher = createCipheriv('aes-128-cbc', aesKey, iv).setAutoPadding(false);
  return Buffer.concat([iv, cipher.update(padded), cipher.final()]);
}

export function decrypt(aesKey: Buffer, payload: Buffer): Buffer {
  if (payload.length < 2 * AES_BLOCK || payload.length % AES_BLOCK !== 0)
    throw new IpmiDecodeError(`an encrypted payload is a 16-byte IV and whole blocks, not ${payload.length} bytes`);
  const decipher = createDecipheriv('aes-128-cbc', aesKey, payload.subarray(0, AES_BLOCK)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(payload.subarray(AES_BLOCK)), decipher.final()]);
  const n = plain[plain.length - 1]!;
  if (n >= AES_BLOCK) throw new IpmiDecodeError(`confidentiality pad length ${n} is not below 16`);
  for (let i = 0; i < n; i++)
    if (plain[plain.length - 1 - n + i] !== i + 1)
      throw new IpmiDecodeError('confidentiality pad bytes are not 1, 2, 3 …');
  return plain.subarray(0, plain.length - 1 - n);
}

function authCode(integrity: IntegrityKey, covered: Buffer): Buffer {
  return createHmac(integrity.hash, integrity.key).update(covered).digest().subarray(0, integrity.length);
}

/** An IPMI v2.0 / RMCP+ packet; with keys, the payload is encrypted and the packet signed. */
export function encodeV2(
  packet: { payloadType: number; sessionId: number; sequence: number; payload: Buffer },
  keys?: SessionKeys,
  iv?: Buffer,
): Buffer {
  const body = keys ? encrypt(keys.aesKey, packet.payload, iv) : packet.payload;
  const typeByte = (packet.payloadType & 0x3f) | (keys ? ENCRYPTED | AUTHENTICATED : 0);
  const session = Buffer.concat([
    Buffer.from([AUTH_FORMAT_RMCPP, typeByte]),
    u32le(packet.sessionId),
    u32le(packet.sequence),
    u16le(body.length),
    body,
  ]);
  if (!keys) return Buffer.concat([RMCP_IPMI_HEADER, session]);
  // The AuthCode covers the session header through Next Header, padded with 0xFF to a multiple of 4 (§13.28.4).
  const pad = (4 - ((session.length + 2) % 4)) % 4;
  const covered = Buffer.concat([session, Buffer.alloc(pad, 0xff), Buffer.from([pad, NEXT_HEADER])]);
  return Buffer.concat([RMCP_IPMI_HEADER, covered, authCode(keys.integrity, covered)]);
}

/**
 * Decodes a datagram from a BMC. With keys, a v2 packet must be signed (and is checked) and
 * encrypted (and is decrypted); an unsigned packet of an active session is refused, so no one on
 * the path can answer for the BMC.
 */
export function decode(datagram: Buffer, keys?: SessionKeys): Decoded {
  if (datagram.length > MAX_DATAGRAM)
    throw new IpmiDecodeError(`datagram of ${datagram.length} bytes is larger than any answer (${MAX_DATAGRAM})`);
  const c = new Cursor(datagram);
  const rmcp = c.bytes(4, 'RMCP header');
  if (rmcp[0] !== 0x06 || (rmcp[3]! & 0x1f) !== 0x07) throw new IpmiDecodeError('not an RMCP IPMI-class packet');
  const authType = c.u8('auth type');
  if (authType !== AUTH_FORMAT_RMCPP) {
    // v1.5: sequence, session ID, [16-byte AuthCode unless type none], length, message.
    const sequence = c.u32('session sequence');
    const sessionId = c.u32('session id');
    if (authType !== AUTH_TYPE_NONE) c.bytes(16, 'v1.5 AuthCode');
    const length = c.u8('message length');
    return { format: 'v1.5', sessionId, sequence, message: Buffer.from(c.bytes(length, 'v1.5 message')) };
  }
  const typeByte = c.u8('payload type');
  const payloadType = typeByte & 0x3f;
  if (payloadType === 0x02) throw new IpmiDecodeError('OEM payloads are not spoken here');
  const sessionId = c.u32('session id');
  const sequence = c.u32('session sequence');
  const length = c.u16('payload length');
  let payload = c.bytes(length, 'payload');
  const authenticated = (typeByte & AUTHENTICATED) !== 0;
  const encrypted = (typeByte & ENCRYPTED) !== 0;
  if (keys) {
    if (!authenticated) throw new IpmiDecodeError('an unsigned packet in an authenticated session');
    const trailer = c.rest();
    const codeLength = keys.integrity.length;
    if (trailer.length < 2 + codeLength) throw new IpmiDecodeError('integrity trailer is too short');
    const next = trailer[trailer.length - codeLength - 1];
    const pad = trailer[trailer.length - codeLength - 2]!;
    if (next !== NEXT_HEADER || pad > 3 || trailer.length !== pad + 2 + codeLength)
      throw new IpmiDecodeError('malformed integrity trailer');
    const covered = datagram.subarray(4, datagram.length - codeLength);
    const expected = authCode(keys.integrity, covered);
    if (!timingSafeEqual(expected, datagram.subarray(datagram.length - codeLength)))
      throw new IpmiDecodeError('AuthCode does not match: not from the BMC of this session');
    if (!encrypted) throw new IpmiDecodeError('an unencrypted packet in an encrypted session');
    payload = decrypt(keys.aesKey, payload);
  } else if (authenticated || encrypted) {
    throw new IpmiDecodeError('a signed or encrypted packet before the session has keys');
  }
  return { format: 'v2', payloadType, sessionId, sequence, payload: Buffer.from(payload), authenticated, encrypted };
}
