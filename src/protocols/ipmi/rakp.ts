/**
 * RMCP+ session establishment (IPMI v2.0 §13.17–13.32): Open Session Request/Response, RAKP
 * messages 1–4, and the keys they yield. Only two cipher suites are spoken (§22.15.2, table 22-20):
 *   17: RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128 (preferred)
 *    3: RAKP-HMAC-SHA1,   HMAC-SHA1-96,    AES-CBC-128 (fallback; all ipmi_sim and older BMCs offer)
 * Never suite 0 or any "none" algorithm: with RAKP-none a BMC accepts any password.
 *
 * Names follow the spec: "m" is the remote console (this client), "c" the managed system (BMC).
 * Kuid is the user's password, zero-padded to 20 bytes; with no BMC key set (the usual case) Kg = Kuid.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Cursor, IpmiDecodeError, u32le } from './cursor.ts';
import type { SessionKeys } from './packet.ts';

export interface CipherSuite {
  readonly id: 3 | 17;
  readonly auth: number;
  readonly integrity: number;
  readonly confidentiality: number;
  readonly hash: 'sha1' | 'sha256';
  /** Bytes of RAKP 4's integrity check value and of each packet's AuthCode. */
  readonly icvLength: number;
}

export const CIPHER_SUITES: Readonly<Record<3 | 17, CipherSuite>> = {
  17: { id: 17, auth: 0x03, integrity: 0x04, confidentiality: 0x01, hash: 'sha256', icvLength: 16 },
  3: { id: 3, auth: 0x01, integrity: 0x01, confidentiality: 0x01, hash: 'sha1', icvLength: 12 },
};
/** Tried in this order; the first the BMC accepts is used. */
export const SUITE_PREFERENCE: readonly (3 | 17)[] = [17, 3];

export const enum Privilege {
  User = 2,
  Operator = 3,
  Administrator = 4,
}

/** RMCP+ and RAKP status codes (§13.24, table 13-15). */
export const RMCPP_STATUS: Readonly<Record<number, string>> = {
  0x01: 'insufficient resources for session',
  0x02: 'invalid session ID',
  0x03: 'invalid payload type',
  0x04: 'invalid authentication algorithm',
  0x05: 'invalid integrity algorithm',
  0x06: 'no matching authentication payload',
  0x07: 'no matching integrity payload',
  0x08: 'inactive session ID',
  0x09: 'invalid role',
  0x0a: 'unauthorized role or privilege level requested',
  0x0b: 'insufficient resources to create a session at the requested role',
  0x0c: 'invalid name length',
  0x0d: 'unauthorized name',
  0x0e: 'unauthorized GUID',
  0x0f: 'invalid integrity check value',
  0x10: 'invalid confidentiality algorithm',
  0x11: 'no cipher suite match with proposed security algorithms',
  0x12: 'illegal or unrecognized parameter',
};
/** Statuses that mean "not this cipher suite" (try the next one), as opposed to a refused login. */
export const SUITE_REFUSED: ReadonlySet<number> = new Set([0x04, 0x05, 0x06, 0x07, 0x10, 0x11]);
/** Statuses that mean the user, its role or its password was refused. */
export const LOGIN_REFUSED: ReadonlySet<number> = new Set([0x09, 0x0a, 0x0d, 0x0f]);

function algorithmRecord(kind: number, algorithm: number): Buffer {
  return Buffer.from([kind, 0, 0, 0x08, algorithm, 0, 0, 0]);
}

/** §13.17, table 13-9. Maximum privilege 0 asks for the highest the suite allows; the role is asked for in RAKP 1. */
export function encodeOpenSessionRequest(
  tag: number,
  consoleSessionId: number,
  suite: CipherSuite,
  privilege: Privilege,
): Buffer {
  return Buffer.concat([
    Buffer.from([tag & 0xff, privilege, 0, 0]),
    u32le(consoleSessionId),
    algorithmRecord(0x00, suite.auth),
    algorithmRecord(0x01, suite.integrity),
    algorithmRecord(0x02, suite.confidentiality),
  ]);
}

export interface OpenSessionResponse {
  readonly tag: number;
  readonly status: number;
  readonly consoleSessionId?: number;
  readonly bmcSessionId?: number;
  readonly auth?: number;
  readonly integrity?: number;
  readonly confidentiality?: number;
}

/** §13.18, table 13-10. An error answer may stop after the status (ipmi_sim sends 2 bytes). */
export function decodeOpenSessionResponse(payload: Buffer): OpenSessionResponse {
  const c = new Cursor(payload);
  const tag = c.u8('message tag');
  const status = c.u8('status');
  if (status !== 0) return { tag, status };
  c.u8('max privilege');
  c.u8('reserved');
  const consoleSessionId = c.u32('remote console session id');
  const bmcSessionId = c.u32('managed system session id');
  const algorithm = (kind: number) => {
    const record = c.bytes(8, 'algorithm payload');
    if (record[0] !== kind || record[3] !== 8)
      throw new IpmiDecodeError(`algorithm payload of type ${kind} is malformed`);
    return record[4]! & 0x3f;
  };
  return {
    tag,
    status,
    consoleSessionId,
    bmcSessionId,
    auth: algorithm(0),
    integrity: algorithm(1),
    confidentiality: algorithm(2),
  };
}

/** §13.20, table 13-11. The role byte: bits 3:0 the privilege, bit 4 name-only lookup. */
export function encodeRakp1(
  tag: number,
  bmcSessionId: number,
  consoleRandom: Buffer,
  role: number,
  username: string,
): Buffer {
  const name = Buffer.from(username, 'utf8');
  if (name.length > 16) throw new RangeError('an IPMI user name is at most 16 bytes');
  return Buffer.concat([
    Buffer.from([tag & 0xff, 0, 0, 0]),
    u32le(bmcSessionId),
    consoleRandom,
    Buffer.from([role, 0, 0, name.length]),
    name,
  ]);
}

export interface Rakp2 {
  readonly tag: number;
  readonly status: number;
  readonly consoleSessionId?: number;
  readonly bmcRandom?: Buffer;
  readonly bmcGuid?: Buffer;
  readonly keyExchangeCode?: Buffer;
}

export function decodeRakp2(payload: Buffer, suite: CipherSuite): Rakp2 {
  const c = new Cursor(payload);
  const tag = c.u8('message tag');
  const status = c.u8('status');
  if (status !== 0) return { tag, status };
  c.bytes(2, 'reserved');
  const consoleSessionId = c.u32('remote console session id');
  const bmcRandom = Buffer.from(c.bytes(16, 'managed system random'));
  const bmcGuid = Buffer.from(c.bytes(16, 'managed system GUID'));
  const keyExchangeCode = Buffer.from(c.bytes(suite.hash === 'sha256' ? 32 : 20, 'key exchange authentication code'));
  return { tag, status, consoleSessionId, bmcRandom, bmcGuid, keyExchangeCode };
}

export function encodeRakp3(tag: number, status: number, bmcSessionId: number, code: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag & 0xff, status, 0, 0]), u32le(bmcSessionId), code]);
}

export interface Rakp4 {
  readonly tag: number;
  readonly status: number;
  readonly consoleSessionId?: number;
  readonly icv?: Buffer;
}

export function decodeRakp4(payload: Buffer, suite: CipherSuite): Rakp4 {
  const c = new Cursor(payload);
  const tag = c.u8('message tag');
  const status = c.u8('status');
  if (status !== 0) return { tag, status };
  c.bytes(2, 'reserved');
  const consoleSessionId = c.u32('remote console session id');
  return { tag, status, consoleSessionId, icv: Buffer.from(c.bytes(suite.icvLength, 'integrity check value')) };
}

/** Everything both sides know once RAKP 2 has arrived. */
export interface Exchange {
  readonly suite: CipherSuite;
  readonly consoleSessionId: number;
  readonly bmcSessionId: number;
  readonly consoleRandom: Buffer;
  readonly bmcRandom: Buffer;
  readonly bmcGuid: Buffer;
  readonly role: number;
  readonly username: string;
  /** Kuid: the password zero-padded to 20 bytes. */
  readonly kuid: Buffer;
}

export function kuidOf(password: string): Buffer {
  const bytes = Buffer.from(password, 'utf8');
  if (bytes.length > 20) throw new RangeError('an IPMI v2.0 password is at most 20 bytes');
  return Buffer.concat([bytes, Buffer.alloc(20 - bytes.length)]);
}

const hmac = (hash: 'sha1' | 'sha256', key: Buffer, ...parts: Buffer[]) =>
  createHmac(hash, key).update(Buffer.concat(parts)).digest();
const nameBytes = (x: Exchange) => {
  const name = Buffer.from(x.username, 'utf8');
  return Buffer.concat([Buffer.from([x.role, name.length]), name]);
};

/** RAKP 2's code (§13.21): HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENGTHm, UNAMEm). A mismatch: wrong password. */
export function rakp2Matches(x: Exchange, code: Buffer): boolean {
  const expected = hmac(
    x.suite.hash,
    x.kuid,
    u32le(x.consoleSessionId),
    u32le(x.bmcSessionId),
    x.consoleRandom,
    x.bmcRandom,
    x.bmcGuid,
    nameBytes(x),
  );
  return expected.length === code.length && timingSafeEqual(expected, code);
}

/** RAKP 3's code (§13.22): HMAC_Kuid(Rc, SIDm, ROLEm, ULENGTHm, UNAMEm). */
export function rakp3Code(x: Exchange): Buffer {
  return hmac(x.suite.hash, x.kuid, x.bmcRandom, u32le(x.consoleSessionId), nameBytes(x));
}

/** SIK (§13.31): HMAC_Kg(Rm, Rc, ROLEm, ULENGTHm, UNAMEm). */
export function sessionIntegrityKey(x: Exchange): Buffer {
  return hmac(x.suite.hash, x.kuid, x.consoleRandom, x.bmcRandom, nameBytes(x));
}

/** RAKP 4's check value (§13.23): HMAC_SIK(Rm, SIDc, GUIDc), truncated. */
export function rakp4Matches(x: Exchange, sik: Buffer, icv: Buffer): boolean {
  const expected = hmac(x.suite.hash, sik, x.consoleRandom, u32le(x.bmcSessionId), x.bmcGuid).subarray(
    0,
    x.suite.icvLength,
  );
  return expected.length === icv.length && timingSafeEqual(expected, icv);
}

/** K1 = HMAC_SIK(20 × 0x01) signs packets, K2 = HMAC_SIK(20 × 0x02) encrypts them (first 16 bytes) (§13.32). */
export function sessionKeys(suite: CipherSuite, sik: Buffer): SessionKeys {
  const k1 = hmac(suite.hash, sik, Buffer.alloc(20, 0x01));
  const k2 = hmac(suite.hash, sik, Buffer.alloc(20, 0x02));
  return { integrity: { hash: suite.hash, length: suite.icvLength, key: k1 }, aesKey: k2.subarray(0, 16) };
}
