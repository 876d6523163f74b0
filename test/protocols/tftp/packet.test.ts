import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FileStore } from '../../../src/protocols/tftp/files.ts';
import { negotiate } from '../../../src/protocols/tftp/options.ts';
import {
  decodePacket,
  encodeAck,
  encodeData,
  encodeError,
  encodeOack,
  encodeRequest,
  Opcode,
  TftpDecodeError,
} from '../../../src/protocols/tftp/packet.ts';
import { toNetascii } from '../../../src/protocols/tftp/server.ts';
import { NetasciiCache } from '../../../src/protocols/tftp/netascii.ts';

test('requests round-trip with options; names are case-folded, first occurrence wins', () => {
  const encoded = encodeRequest(
    Opcode.Rrq,
    'pxe/ipxe.efi',
    'octet',
    new Map([
      ['blksize', '1468'],
      ['tsize', '0'],
    ]),
  );
  assert.deepEqual(decodePacket(encoded), {
    opcode: Opcode.Rrq,
    filename: 'pxe/ipxe.efi',
    mode: 'octet',
    options: new Map([
      ['blksize', '1468'],
      ['tsize', '0'],
    ]),
  });
  const shouty = Buffer.from('\x00\x01f\x00OCTET\x00BLKSIZE\x00100\x00blksize\x00200\x00', 'latin1');
  const decoded = decodePacket(shouty);
  assert.equal(decoded.opcode, Opcode.Rrq);
  if (decoded.opcode === Opcode.Rrq) assert.equal(decoded.options.get('blksize'), '100');
});

test('DATA, ACK, ERROR, OACK round-trip, block numbers wrap at 65536', () => {
  assert.deepEqual(decodePacket(encodeData(65536 + 7, Buffer.from('abc'))), {
    opcode: Opcode.Data,
    block: 7,
    data: Buffer.from('abc'),
  });
  assert.deepEqual(decodePacket(encodeAck(65535)), { opcode: Opcode.Ack, block: 65535 });
  assert.deepEqual(decodePacket(encodeError(2, 'Access violation')), {
    opcode: Opcode.Error,
    code: 2,
    message: 'Access violation',
  });
  assert.deepEqual(decodePacket(encodeOack(new Map([['tsize', '42']]))), {
    opcode: Opcode.Oack,
    options: new Map([['tsize', '42']]),
  });
});

test('malformed packets are TftpDecodeErrors', () => {
  const cases = [
    '',
    '\x00',
    '\x00\x01',
    '\x00\x01file',
    '\x00\x01file\x00',
    '\x00\x01file\x00weird\x00',
    '\x00\x01f\x00octet\x00blksize\x00',
    '\x00\x04\x00\x01\x00',
    '\x00\x09\x00\x00',
    '\x00\x05\x00\x01oops',
  ];
  for (const text of cases)
    assert.throws(() => decodePacket(Buffer.from(text, 'latin1')), TftpDecodeError, JSON.stringify(text));
});

test('fuzz: 300 000 random and mutated datagrams never throw anything but TftpDecodeError', () => {
  const seeds = [
    encodeRequest(
      Opcode.Rrq,
      'ipxe.efi',
      'octet',
      new Map([
        ['blksize', '1468'],
        ['windowsize', '8'],
        ['tsize', '0'],
      ]),
    ),
    encodeAck(3),
    encodeError(1, 'x'),
    encodeOack(new Map([['blksize', '512']])),
  ];
  let decoded = 0;
  for (let i = 0; i < 300_000; i++) {
    let packet: Buffer;
    if (i % 2 === 0) packet = randomBytes(i % 600);
    else {
      packet = Buffer.from(seeds[i % seeds.length]!);
      const flips = 1 + (i % 4);
      for (let f = 0; f < flips; f++) packet[(i * 31 + f * 7) % packet.length] = (i * 131 + f) & 255;
      if (i % 3 === 0) packet = packet.subarray(0, i % packet.length);
    }
    try {
      decodePacket(packet);
      decoded++;
    } catch (error) {
      if (!(error instanceof TftpDecodeError)) throw error;
    }
  }
  assert.ok(decoded > 0, 'some mutated packets still decode');
});

test('negotiation: clamps, answers tsize, ignores bad values and unknown options', () => {
  const limits = { maxBlockSize: 1468, maxWindowSize: 16, defaultTimeoutMs: 1000 };
  const n = negotiate(
    new Map([
      ['blksize', '9000'],
      ['windowsize', '64'],
      ['tsize', '0'],
      ['timeout', '3'],
      ['multicast', ''],
    ]),
    12345,
    limits,
  );
  assert.deepEqual([n.blockSize, n.windowSize, n.timeoutMs], [1468, 16, 3000]);
  assert.deepEqual(
    [...n.oack],
    [
      ['blksize', '1468'],
      ['windowsize', '16'],
      ['tsize', '12345'],
      ['timeout', '3'],
    ],
  );
  const bad = negotiate(
    new Map([
      ['blksize', '7'],
      ['timeout', '0'],
      ['windowsize', 'x'],
    ]),
    1,
    limits,
  );
  assert.deepEqual([bad.blockSize, bad.windowSize, bad.oack.size], [512, 1, 0]);
  assert.equal(negotiate(new Map([['tsize', '0']]), 0, limits).oack.has('tsize'), false, 'no tsize 0 for empty files');
  // A timeout above the server's ceiling is declined, not stretched to: 255 s × retries held a slot ~21 minutes.
  const long = negotiate(new Map([['timeout', '255']]), 1, limits);
  assert.deepEqual([long.timeoutMs, long.oack.has('timeout')], [1000, false]);
  assert.equal(negotiate(new Map([['timeout', '9']]), 1, { ...limits, maxTimeoutSeconds: 10 }).timeoutMs, 9000);
});

test('file names: traversal, drive letters and control bytes are refused; a leading slash names the root', () => {
  for (const name of [
    '../etc/passwd',
    'a/../../etc/passwd',
    '/../etc/passwd',
    'C:\\boot.ini',
    '..\\..\\etc\\passwd',
    'a\x00b',
    'a\nb',
    '',
    '/',
  ]) {
    assert.equal(FileStore.sanitize(name).ok, false, JSON.stringify(name));
  }
  assert.deepEqual(FileStore.sanitize('./pxe//ipxe.efi'), { ok: true, path: 'pxe/ipxe.efi' });
  assert.deepEqual(FileStore.sanitize('pxe\\undionly.kpxe'), { ok: true, path: 'pxe/undionly.kpxe' });
  // tftpd-hpa -s: "/undionly.kpxe" is the root's undionly.kpxe (firmware often asks that way).
  assert.deepEqual(FileStore.sanitize('/undionly.kpxe'), { ok: true, path: 'undionly.kpxe' });
  assert.deepEqual(FileStore.sanitize('//pxe/ipxe.efi'), { ok: true, path: 'pxe/ipxe.efi' });
});

test('netascii turns LF into CR LF and CR into CR NUL, once per file version, within its budget', () => {
  assert.deepEqual(toNetascii(Buffer.from('a\nb\rc')), Buffer.from('a\r\nb\r\0c', 'latin1'));
  const cache = new NetasciiCache(100);
  const v1 = Buffer.from('x\n'.repeat(10));
  assert.equal(cache.convert(v1), cache.convert(v1), 'the same copy for every transfer of one version');
  assert.equal(cache.conversions, 1);
  assert.equal(cache.bytes, 20 + 30);
  const v2 = Buffer.from('y\n'.repeat(10));
  cache.convert(v2);
  assert.ok(cache.bytes <= 100, `bounded: ${cache.bytes}`);
  assert.equal(cache.convert(Buffer.alloc(101, 10)), undefined, 'larger than the budget: not served in netascii');
});
