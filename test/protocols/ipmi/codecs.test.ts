/**
 * IPMI v2.0 / RMCP+ codecs against one whole session captured from ipmitool 1.8.19 (-vvvvv,
 * -I lanplus -C 3) talking to ipmi_sim 2.0.33, password "Sim-pass-0417", user "admin": every packet
 * both ways, the randoms, and the keys ipmitool derived. Our encoders must produce ipmitool's bytes
 * and our key derivation its keys; our decoders must read the BMC's bytes and refuse any truncation.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import * as commands from '../../../src/protocols/ipmi/commands.ts';
import { IpmiDecodeError } from '../../../src/protocols/ipmi/cursor.ts';
import { checksum, decodeResponse, encodeRequest } from '../../../src/protocols/ipmi/message.ts';
import { decode, decrypt, encodeV15, encodeV2, encrypt, PayloadType } from '../../../src/protocols/ipmi/packet.ts';
import * as rakp from '../../../src/protocols/ipmi/rakp.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const CAPTURE = {
  getAuthCapRequest: hex('06 00 ff 07 00 00 00 00 00 00 00 00 00 09 20 18 c8 81 00 38 8e 04 b5'),
  getAuthCapResponse: hex('06 00 ff 07 00 00 00 00 00 00 00 00 00 10 81 1c 63 20 00 38 00 01 97 04 03 00 00 00 00 09'),
  openRequest: hex(
    '06 00 ff 07 06 10 00 00 00 00 00 00 00 00 20 00 00 00 00 00 a4 a3 a2 a0 00 00 00 08 01 00 00 00 01 00 00 08 01 00 00 00 02 00 00 08 01 00 00 00',
  ),
  openResponse: hex(
    '06 00 ff 07 06 11 00 00 00 00 00 00 00 00 24 00 00 00 00 00 a4 a3 a2 a0 02 00 00 00 00 00 00 08 01 00 00 00 01 00 00 08 01 00 00 00 02 00 00 08 01 00 00 00',
  ),
  consoleRandom: hex('43 98 f8 76 a6 b0 50 29 5b ee f0 16 c8 17 66 47'),
  rakp1: hex(
    '06 00 ff 07 06 12 00 00 00 00 00 00 00 00 21 00 00 00 00 00 02 00 00 00 43 98 f8 76 a6 b0 50 29 5b ee f0 16 c8 17 66 47 14 00 00 05 61 64 6d 69 6e',
  ),
  rakp2: hex(
    '06 00 ff 07 06 13 00 00 00 00 00 00 00 00 3c 00 00 00 00 00 a4 a3 a2 a0 c3 ec 94 02 44 04 4a 9c 94 95 16 de 1c 56 08 65 a1 23 45 67 89 ab cd ef a1 23 45 67 89 ab cd ef 2a 5c 60 c7 dc ec d9 f4 55 63 b5 5f 4c f7 4c be a5 25 4e e8',
  ),
  rakp3: hex(
    '06 00 ff 07 06 14 00 00 00 00 00 00 00 00 1c 00 00 00 00 00 02 00 00 00 12 9a c3 2a 69 a0 f9 49 8e 93 a9 05 d2 1d da f0 46 6a c4 c0',
  ),
  rakp4: hex(
    '06 00 ff 07 06 15 00 00 00 00 00 00 00 00 14 00 00 00 00 00 a4 a3 a2 a0 fb 72 ad 5b 75 62 ea 41 9d f8 3b 63',
  ),
  sik: hex('df 12 c5 b1 c1 3e 80 e0 9a 3e f6 3b 40 1f c4 66 d1 75 a1 6a'),
  k1: hex('7b c1 c2 87 85 3a fd f7 0b c1 b2 fd 29 24 67 10 15 fd b6 38'),
  k2: hex('9a b3 e4 1a d3 0a 6a ed d0 f6 76 15 e8 37 bb 50 5a 8b 52 75'),
  // Set Session Privilege Level (administrator), session sequence 3, with ipmitool's IV.
  privIv: hex('1a 70 93 7e 64 32 ae 2a 4e ef da 83 66 7f df d2'),
  privRequest: hex(
    '06 00 ff 07 06 c0 02 00 00 00 03 00 00 00 20 00 1a 70 93 7e 64 32 ae 2a 4e ef da 83 66 7f df d2 f6 b8 5a bd 9a 86 a9 0c b7 1f e5 92 58 df 87 fe ff ff 02 07 7e f5 6a ae 80 fd 0a 97 74 40 34 e3',
  ),
  privResponse: hex(
    '06 00 ff 07 06 c0 a4 a3 a2 a0 01 00 00 00 20 00 3e 43 1b 61 03 b5 88 cc c1 be 6c 61 df 7d 89 d7 58 b0 8f c0 97 52 19 92 dd ac b3 72 0d f1 6e c1 ff ff 02 07 4d 7c 6d de 60 e2 6c a7 95 bb 18 69',
  ),
};
const CONSOLE_SID = 0xa0a2a3a4;
const BMC_SID = 2;
const suite3 = rakp.CIPHER_SUITES[3];
const exchange: rakp.Exchange = {
  suite: suite3,
  consoleSessionId: CONSOLE_SID,
  bmcSessionId: BMC_SID,
  consoleRandom: CAPTURE.consoleRandom,
  bmcRandom: hex('c3 ec 94 02 44 04 4a 9c 94 95 16 de 1c 56 08 65'),
  bmcGuid: hex('a1 23 45 67 89 ab cd ef a1 23 45 67 89 ab cd ef'),
  role: 0x14,
  username: 'admin',
  kuid: rakp.kuidOf('Sim-pass-0417'),
};
const keys = rakp.sessionKeys(suite3, CAPTURE.sik);

/** Every strict prefix of a received packet must be refused with a decode error, never read past its end. */
function refusesEveryTruncation(packet: Buffer, read: (b: Buffer) => unknown): void {
  for (let n = 0; n < packet.length; n++)
    assert.throws(() => read(packet.subarray(0, n)), IpmiDecodeError, `prefix of ${n} bytes`);
}

describe('IPMI messages and v1.5 framing', () => {
  it("Get Channel Authentication Capabilities: ipmitool's request bytes, the BMC's answer", () => {
    assert.deepEqual(
      encodeV15(encodeRequest(commands.getChannelAuthCapabilities(rakp.Privilege.Administrator), 0)),
      CAPTURE.getAuthCapRequest,
    );
    const packet = decode(CAPTURE.getAuthCapResponse);
    assert.equal(packet.format, 'v1.5');
    const response = decodeResponse((packet as { message: Buffer }).message);
    assert.deepEqual([response.netFn, response.cmd, response.completionCode, response.rqSeq], [0x07, 0x38, 0, 0]);
    assert.deepEqual(commands.parseChannelAuthCapabilities(response.data), { channel: 1, ipmiV20: true });
    refusesEveryTruncation(CAPTURE.getAuthCapResponse, (b) =>
      decodeResponse((decode(b) as { message: Buffer }).message),
    );
  });

  it('checksums: bytes plus checksum sum to zero; a flipped byte is refused', () => {
    assert.equal(checksum(Buffer.from([0x20, 0x18])), 0xc8);
    const message = (decode(CAPTURE.getAuthCapResponse) as { message: Buffer }).message;
    for (let i = 0; i < message.length; i++) {
      const bad = Buffer.from(message);
      bad[i]! ^= 0x01;
      assert.throws(() => decodeResponse(bad), IpmiDecodeError, `byte ${i}`);
    }
  });
});

describe('RMCP+ session establishment (cipher suite 3)', () => {
  it('Open Session: request bytes as ipmitool sends them, response decoded', () => {
    const payload = rakp.encodeOpenSessionRequest(0, CONSOLE_SID, suite3, 0 as rakp.Privilege);
    assert.deepEqual(
      encodeV2({ payloadType: PayloadType.OpenSessionRequest, sessionId: 0, sequence: 0, payload }),
      CAPTURE.openRequest,
    );
    const packet = decode(CAPTURE.openResponse);
    assert.ok(packet.format === 'v2' && packet.payloadType === PayloadType.OpenSessionResponse);
    assert.deepEqual(rakp.decodeOpenSessionResponse(packet.payload), {
      tag: 0,
      status: 0,
      consoleSessionId: CONSOLE_SID,
      bmcSessionId: BMC_SID,
      auth: 1,
      integrity: 1,
      confidentiality: 1,
    });
    refusesEveryTruncation(packet.payload, (b) => rakp.decodeOpenSessionResponse(b));
    // an error answer may stop after the status (ipmi_sim sends tag and status only)
    assert.deepEqual(rakp.decodeOpenSessionResponse(Buffer.from([7, 0x04])), { tag: 7, status: 0x04 });
  });

  it('suite 17 asks for RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128; no suite offers a "none" algorithm', () => {
    const payload = rakp.encodeOpenSessionRequest(1, 5, rakp.CIPHER_SUITES[17], rakp.Privilege.Operator);
    assert.deepEqual([payload[12], payload[20], payload[28]], [0x03, 0x04, 0x01]);
    assert.deepEqual(rakp.SUITE_PREFERENCE, [17, 3]);
    for (const suite of Object.values(rakp.CIPHER_SUITES))
      assert.ok(suite.auth && suite.integrity && suite.confidentiality, `suite ${suite.id}`);
  });

  it('RAKP 1 bytes, RAKP 2 verified with the password, RAKP 3 code, SIK, K1, K2, RAKP 4 check value', () => {
    assert.deepEqual(
      encodeV2({
        payloadType: PayloadType.Rakp1,
        sessionId: 0,
        sequence: 0,
        payload: rakp.encodeRakp1(0, BMC_SID, CAPTURE.consoleRandom, 0x14, 'admin'),
      }),
      CAPTURE.rakp1,
    );
    const p2 = decode(CAPTURE.rakp2);
    assert.ok(p2.format === 'v2');
    const rakp2 = rakp.decodeRakp2(p2.payload, suite3);
    assert.equal(rakp2.consoleSessionId, CONSOLE_SID);
    assert.deepEqual(rakp2.bmcRandom, exchange.bmcRandom);
    assert.ok(rakp.rakp2Matches(exchange, rakp2.keyExchangeCode!));
    assert.ok(
      !rakp.rakp2Matches({ ...exchange, kuid: rakp.kuidOf('Sim-pass-0418') }, rakp2.keyExchangeCode!),
      'a wrong password fails RAKP 2',
    );
    refusesEveryTruncation(p2.payload, (b) => rakp.decodeRakp2(b, suite3));

    assert.deepEqual(
      encodeV2({
        payloadType: PayloadType.Rakp3,
        sessionId: 0,
        sequence: 0,
        payload: rakp.encodeRakp3(0, 0, BMC_SID, rakp.rakp3Code(exchange)),
      }),
      CAPTURE.rakp3,
    );
    const sik = rakp.sessionIntegrityKey(exchange);
    assert.deepEqual(sik, CAPTURE.sik);
    assert.deepEqual(keys.integrity.key, CAPTURE.k1);
    assert.deepEqual(keys.aesKey, CAPTURE.k2.subarray(0, 16));
    const p4 = decode(CAPTURE.rakp4);
    assert.ok(p4.format === 'v2');
    const rakp4 = rakp.decodeRakp4(p4.payload, suite3);
    assert.ok(rakp.rakp4Matches(exchange, sik, rakp4.icv!));
    assert.ok(!rakp.rakp4Matches(exchange, Buffer.alloc(20), rakp4.icv!));
  });
});

describe('RMCP+ session packets (signed with K1, encrypted with K2)', () => {
  it("encodes ipmitool's Set Session Privilege packet byte for byte (pad, next header, HMAC-SHA1-96)", () => {
    const payload = encodeRequest(commands.setSessionPrivilege(rakp.Privilege.Administrator), 1);
    assert.deepEqual(
      encodeV2({ payloadType: PayloadType.Ipmi, sessionId: BMC_SID, sequence: 3, payload }, keys, CAPTURE.privIv),
      CAPTURE.privRequest,
    );
  });

  it("decodes the BMC's signed, encrypted answer; refuses it altered, truncated, unsigned or under other keys", () => {
    const packet = decode(CAPTURE.privResponse, keys);
    assert.ok(packet.format === 'v2' && packet.authenticated && packet.encrypted);
    assert.equal(packet.sessionId, CONSOLE_SID);
    assert.equal(packet.sequence, 1);
    const response = decodeResponse(packet.payload);
    assert.deepEqual([response.cmd, response.completionCode, response.rqSeq, [...response.data]], [0x3b, 0, 1, [0x04]]);
    for (let i = 4; i < CAPTURE.privResponse.length; i++) {
      const bad = Buffer.from(CAPTURE.privResponse);
      bad[i]! ^= 0x80;
      assert.throws(() => decode(bad, keys), IpmiDecodeError, `byte ${i}`);
    }
    refusesEveryTruncation(CAPTURE.privResponse, (b) => decode(b, keys));
    assert.throws(() => decode(CAPTURE.privResponse, rakp.sessionKeys(suite3, Buffer.alloc(20, 9))), IpmiDecodeError);
    // the same payload unsigned, in a session that has keys: refused (no one on the path answers for the BMC)
    assert.throws(
      () => decode(encodeV2({ payloadType: 0, sessionId: CONSOLE_SID, sequence: 2, payload: Buffer.alloc(16) }), keys),
      IpmiDecodeError,
    );
    // a signed packet before keys exist: refused
    assert.throws(() => decode(CAPTURE.privResponse), IpmiDecodeError);
  });

  it('AES-CBC-128 confidentiality pad round-trips for every length; a bad pad is refused', () => {
    for (let n = 0; n < 40; n++) {
      const plain = Buffer.alloc(n, n);
      const sealed = encrypt(keys.aesKey, plain);
      assert.equal(sealed.length % 16, 0);
      assert.deepEqual(decrypt(keys.aesKey, sealed), plain);
    }
    assert.throws(() => decrypt(keys.aesKey, Buffer.alloc(16)), IpmiDecodeError);
    assert.throws(() => decrypt(keys.aesKey, Buffer.alloc(33)), IpmiDecodeError);
  });
});

describe('chassis commands', () => {
  it('boot flags parameter 5: valid, persistent, EFI bits and the device selector (table 28-14)', () => {
    assert.deepEqual(
      [...commands.encodeBootFlags({ device: 'pxe', persistent: false, uefi: false })],
      [0x80, 0x04, 0, 0, 0],
    );
    assert.deepEqual(
      [...commands.encodeBootFlags({ device: 'disk', persistent: true, uefi: true })],
      [0xe0, 0x08, 0, 0, 0],
    );
    assert.deepEqual(
      [...commands.setBootFlags({ device: 'pxe', persistent: true, uefi: false }).data],
      [0x05, 0xc0, 0x04, 0, 0, 0],
    );
    assert.deepEqual(commands.decodeBootFlags(Buffer.from([0xa0, 0x04, 0, 0, 0])), {
      valid: true,
      persistent: false,
      uefi: true,
      device: 'pxe',
    });
    assert.deepEqual(commands.parseBootOptions(Buffer.from([0x01, 0x05, 0x80, 0x08, 0, 0, 0])).flags, {
      valid: true,
      persistent: false,
      uefi: false,
      device: 'disk',
    });
    assert.throws(() => commands.parseBootOptions(Buffer.from([0x01, 0x04, 0, 0])), IpmiDecodeError);
  });

  it('chassis control bytes (table 28-4) and the power bit of Get Chassis Status', () => {
    assert.deepEqual(
      Object.fromEntries(
        (['off', 'on', 'cycle', 'reset', 'soft'] as const).map((a) => [a, commands.chassisControl(a).data[0]]),
      ),
      { off: 0, on: 1, cycle: 2, reset: 3, soft: 5 },
    );
    assert.deepEqual(commands.parseChassisStatus(Buffer.from([0x01, 0, 0])), { power: 'on' });
    assert.deepEqual(commands.parseChassisStatus(Buffer.from([0x60, 0, 0])), { power: 'off' });
    assert.throws(() => commands.parseChassisStatus(Buffer.alloc(0)), IpmiDecodeError);
  });
});

/**
 * Cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) has no capture (ipmi_sim does
 * not speak it), so its values are computed here from the IPMI v2.0 formulas with node:crypto
 * alone (§13.20–13.32 with SHA-256 for SHA-1, as the errata for suite 17 define it), pinned as
 * hex, and the code under test must agree with both.
 */
describe('RMCP+ cipher suite 17 known answers (HMAC-SHA256)', () => {
  const suite17 = rakp.CIPHER_SUITES[17];
  const le32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const sha256 = (key: Buffer, ...parts: Buffer[]) => createHmac('sha256', key).update(Buffer.concat(parts)).digest();
  const SIDm = 0x0a0b0c0d;
  const SIDc = 0x11223344;
  const Rm = hex('00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f');
  const Rc = hex('f0 e1 d2 c3 b4 a5 96 87 78 69 5a 4b 3c 2d 1e 0f');
  const GUIDc = hex('a1 b2 c3 d4 e5 f6 07 18 29 3a 4b 5c 6d 7e 8f 90');
  const ROLE = 0x14; // operator, name-only lookup
  const UNAME = Buffer.from('admin');
  // Kuid: the password, zero-padded to 20 bytes; Kg = Kuid (no BMC key)
  const Kuid = Buffer.concat([Buffer.from('Sim-pass-0417'), Buffer.alloc(20 - 13)]);
  const roleName = Buffer.concat([Buffer.from([ROLE, UNAME.length]), UNAME]);

  // The spec's formulas, written out here, not taken from rakp.ts:
  const expected = {
    rakp2: sha256(Kuid, le32(SIDm), le32(SIDc), Rm, Rc, GUIDc, roleName), // §13.21
    rakp3: sha256(Kuid, Rc, le32(SIDm), roleName), // §13.22
    sik: sha256(Kuid, Rm, Rc, roleName), // §13.31
  };
  const rakp4 = sha256(expected.sik, Rm, le32(SIDc), GUIDc).subarray(0, 16); // §13.23, HMAC-SHA256-128
  const K1 = sha256(expected.sik, Buffer.alloc(20, 0x01)); // §13.32
  const K2 = sha256(expected.sik, Buffer.alloc(20, 0x02));
  const exchange17: rakp.Exchange = {
    suite: suite17,
    consoleSessionId: SIDm,
    bmcSessionId: SIDc,
    consoleRandom: Rm,
    bmcRandom: Rc,
    bmcGuid: GUIDc,
    role: ROLE,
    username: 'admin',
    kuid: rakp.kuidOf('Sim-pass-0417'),
  };

  it('the independent computation gives the pinned values', () => {
    assert.deepEqual(
      Object.fromEntries(Object.entries({ ...expected, rakp4, K1, K2 }).map(([k, v]) => [k, v.toString('hex')])),
      {
        rakp2: 'a9bb3b2f9c8694bf6c4a0faa8cc9f6025e04601ba7d9f3ae2c598efcc9b8b26b',
        rakp3: 'e50109d8b68498814b7558842a0c7d2565b7cc963bbdca6f05605aa4a1594dbb',
        sik: '7389aa2f1f1b53f8a90b9389008ba60e8b18b34977b8da15b33d07d6bdfbad40',
        rakp4: '0a1d3d54c8cd6b3bb053923c22c316eb',
        K1: 'd61b4f35bc902b2f5db529d947a7b71e66a024b64b02c2df0687ff679ce27845',
        K2: '56fcf8b6fbf8189e95c0127cd4f947ba0abd8e9370409955b33376caf65f70d1',
      },
    );
  });

  it('RAKP 2 (32-byte code) verified, RAKP 3 code, SIK, RAKP 4 check value (16 bytes), K1, K2', () => {
    // RAKP 2 as a BMC sends it: tag, status, reserved, SIDm, Rc, GUIDc, 32-byte key exchange code
    const payload2 = Buffer.concat([Buffer.from([7, 0, 0, 0]), le32(SIDm), Rc, GUIDc, expected.rakp2]);
    const m2 = rakp.decodeRakp2(payload2, suite17);
    assert.deepEqual([m2.consoleSessionId, m2.bmcRandom, m2.bmcGuid], [SIDm, Rc, GUIDc]);
    assert.equal(m2.keyExchangeCode!.length, 32);
    assert.ok(rakp.rakp2Matches(exchange17, m2.keyExchangeCode!));
    assert.ok(!rakp.rakp2Matches({ ...exchange17, kuid: rakp.kuidOf('Sim-pass-0418') }, m2.keyExchangeCode!));
    refusesEveryTruncation(payload2, (b) => rakp.decodeRakp2(b, suite17));

    assert.deepEqual(rakp.rakp3Code(exchange17), expected.rakp3);
    assert.deepEqual(
      rakp.encodeRakp3(9, 0, SIDc, rakp.rakp3Code(exchange17)),
      Buffer.concat([Buffer.from([9, 0, 0, 0]), le32(SIDc), expected.rakp3]),
    );
    const sik = rakp.sessionIntegrityKey(exchange17);
    assert.deepEqual(sik, expected.sik);

    const payload4 = Buffer.concat([Buffer.from([9, 0, 0, 0]), le32(SIDm), rakp4]);
    const m4 = rakp.decodeRakp4(payload4, suite17);
    assert.deepEqual(m4.icv, rakp4);
    assert.ok(rakp.rakp4Matches(exchange17, sik, m4.icv!));
    assert.ok(!rakp.rakp4Matches(exchange17, sik, Buffer.alloc(16)));
    refusesEveryTruncation(payload4, (b) => rakp.decodeRakp4(b, suite17));

    const keys17 = rakp.sessionKeys(suite17, sik);
    assert.deepEqual(keys17.integrity, { hash: 'sha256', length: 16, key: K1 });
    assert.deepEqual(keys17.aesKey, K2.subarray(0, 16));
  });

  it('a session packet: AES-CBC-128 under K2, HMAC-SHA256-128 AuthCode under K1, byte for byte', () => {
    const keys17 = rakp.sessionKeys(suite17, expected.sik);
    const iv = hex('0f 1e 2d 3c 4b 5a 69 78 87 96 a5 b4 c3 d2 e1 f0');
    const plain = encodeRequest(commands.getChassisStatus(), 5);
    // §13.29: confidentiality pad 1, 2, … n, then n, to a multiple of 16; AES-CBC-128, key K2[0..15]
    const n = (16 - ((plain.length + 1) % 16)) % 16;
    const padded = Buffer.concat([plain, Buffer.from(Array.from({ length: n }, (_, i) => i + 1)), Buffer.from([n])]);
    const cipher = createCipheriv('aes-128-cbc', K2.subarray(0, 16), iv).setAutoPadding(false);
    const body = Buffer.concat([iv, cipher.update(padded), cipher.final()]);
    // §13.6 / §13.28.4: auth type 06, payload type 0x00 | encrypted | authenticated, SID, sequence, length
    const session = Buffer.concat([
      Buffer.from([0x06, 0xc0]),
      le32(SIDc),
      le32(7),
      Buffer.from([body.length & 0xff, body.length >> 8]),
      body,
    ]);
    const pad = (4 - ((session.length + 2) % 4)) % 4;
    const covered = Buffer.concat([session, Buffer.alloc(pad, 0xff), Buffer.from([pad, 0x07])]);
    const authCode = createHmac('sha256', K1).update(covered).digest().subarray(0, 16);
    const packet = Buffer.concat([Buffer.from([0x06, 0x00, 0xff, 0x07]), covered, authCode]);

    assert.deepEqual(
      encodeV2({ payloadType: PayloadType.Ipmi, sessionId: SIDc, sequence: 7, payload: plain }, keys17, iv),
      packet,
    );
    const decoded = decode(packet, keys17);
    assert.ok(decoded.format === 'v2' && decoded.authenticated && decoded.encrypted);
    assert.deepEqual([decoded.sessionId, decoded.sequence, decoded.payload], [SIDc, 7, plain]);
    assert.deepEqual(decrypt(keys17.aesKey, body), plain);
    const altered = Buffer.from(packet);
    altered[altered.length - 1]! ^= 0x01;
    assert.throws(() => decode(altered, keys17), IpmiDecodeError);
  });
});
