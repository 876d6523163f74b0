import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  decodePacket,
  encodePacket,
  MessageKind,
  MessageStatus,
  PacketError,
  PacketFramer,
  REMOTE_PROGRAM,
} from '../../../src/protocols/libvirt/packet.ts';
import {
  LibvirtError,
  readDomain,
  readError,
  uuidToString,
  writeDomain,
  writeError,
} from '../../../src/protocols/libvirt/types.ts';
import { XdrError, XdrReader, XdrWriter } from '../../../src/protocols/xdr/xdr.ts';

test('XDR: every type round-trips with the right encoded length and padding', () => {
  const w = new XdrWriter(4)
    .int(-5)
    .uint(0xffffffff)
    .hyper(-(2n ** 40n))
    .uhyper(2n ** 63n)
    .bool(true)
    .string('héllo')
    .opaque(Buffer.from([1, 2, 3]))
    .fixedOpaque(Buffer.alloc(16, 7))
    .optional<string>(null, (x, v) => void x.string(v))
    .optional('yes', (x, v) => void x.string(v))
    .array([1, 2, 3], (x, v) => void x.int(v));
  // 4+4+8+8+4 + (4+8 'héllo' is 6 bytes → 8) + (4+4) + 16 + 4 + (4+4+4) + (4+12)
  assert.equal(w.length, 4 + 4 + 8 + 8 + 4 + 12 + 8 + 16 + 4 + 12 + 16);
  const r = new XdrReader(w.toBuffer());
  assert.equal(r.int(), -5);
  assert.equal(r.uint(), 0xffffffff);
  assert.equal(r.hyper(), -(2n ** 40n));
  assert.equal(r.uhyper(), 2n ** 63n);
  assert.equal(r.bool(), true);
  assert.equal(r.string(100), 'héllo');
  assert.deepEqual(r.opaque(100), Buffer.from([1, 2, 3]));
  assert.deepEqual(r.fixedOpaque(16), Buffer.alloc(16, 7));
  assert.equal(
    r.optional((x) => x.string(10)),
    null,
  );
  assert.equal(
    r.optional((x) => x.string(10)),
    'yes',
  );
  assert.deepEqual(
    r.array(10, (x) => x.int()),
    [1, 2, 3],
  );
  r.end();
});

test('XDR reader refuses lies: lengths past the end, over the limit, huge array counts, bad bools', () => {
  const cases: [string, Buffer, (r: XdrReader) => unknown][] = [
    ['short int', Buffer.alloc(3), (r) => r.int()],
    ['string past the end', new XdrWriter().uint(100).toBuffer(), (r) => r.string(1000)],
    ['string over its limit', new XdrWriter().string('abcdef').toBuffer(), (r) => r.string(3)],
    ['array count lie', new XdrWriter().uint(1_000_000).toBuffer(), (r) => r.array(10_000_000, (x) => x.int())],
    [
      'array over its limit',
      new XdrWriter().array([1, 2, 3], (w, v) => void w.int(v)).toBuffer(),
      (r) => r.array(2, (x) => x.int()),
    ],
    ['bool 2', new XdrWriter().uint(2).toBuffer(), (r) => r.bool()],
  ];
  for (const [name, buf, read] of cases) assert.throws(() => read(new XdrReader(buf)), XdrError, name);
});

test("remote_error becomes a LibvirtError with libvirt's code, domain and message", () => {
  const w = new XdrWriter();
  writeError(w, { code: 42, domain: 10, message: "Domain not found: no domain with matching name 'x'", level: 2 });
  const error = readError(new XdrReader(w.toBuffer()));
  assert.ok(error instanceof LibvirtError);
  assert.deepEqual(
    [error.code, error.domain, error.level, error.message],
    [42, 10, 2, "Domain not found: no domain with matching name 'x'"],
  );
  const d = new XdrWriter();
  writeDomain(d, { name: 'vm1', uuid: Buffer.from('00112233445566778899aabbccddeeff', 'hex'), id: -1 });
  const domain = readDomain(new XdrReader(d.toBuffer()));
  assert.equal(uuidToString(domain.uuid), '00112233-4455-6677-8899-aabbccddeeff');
});

const header = (serial: number) => ({
  program: REMOTE_PROGRAM,
  version: 1,
  procedure: 66,
  type: MessageKind.Call,
  serial,
  status: MessageStatus.Ok,
});

test('framing: every recorded packet split at every offset comes out whole and once', () => {
  const packets = [
    encodePacket(header(1)),
    encodePacket(header(2), new XdrWriter().string('qemu:///system').toBuffer()),
    encodePacket(header(3), randomBytes(333)),
  ];
  const stream = Buffer.concat(packets);
  for (let split = 0; split <= stream.length; split++) {
    const framer = new PacketFramer();
    const out = [...framer.push(stream.subarray(0, split)), ...framer.push(stream.subarray(split))];
    assert.deepEqual(
      out.map((p) => p.header.serial),
      [1, 2, 3],
      `split at ${split}`,
    );
    assert.deepEqual(out[2]!.body, packets[2]!.subarray(28));
  }
  // Byte by byte, too.
  const framer = new PacketFramer();
  const out = [...stream].flatMap((byte) => framer.push(Buffer.from([byte])));
  assert.equal(out.length, 3);
  assert.deepEqual(decodePacket(packets[1]!).header, header(2));
});

test('framing refuses impossible lengths', () => {
  assert.throws(() => new PacketFramer().push(Buffer.from([0, 0, 0, 4])), PacketError);
  assert.throws(() => new PacketFramer().push(Buffer.from([0x7f, 0xff, 0xff, 0xff])), PacketError);
});

test('fuzz: 200 000 random and mutated bodies never throw anything but XdrError', () => {
  const w = new XdrWriter();
  writeError(w, { code: 1, domain: 2, message: 'm', level: 2 });
  const seed = w.toBuffer();
  const pool = randomBytes(1 << 16);
  for (let i = 0; i < 200_000; i++) {
    let body: Buffer;
    if (i % 2) {
      const start = (i * 7919) % (pool.length - 200);
      body = pool.subarray(start, start + (i % 200));
    } else {
      body = Buffer.from(seed);
      body[(i * 31) % body.length] = pool[i % pool.length]!;
      if (i % 3 === 0) body = body.subarray(0, i % body.length);
    }
    try {
      readError(new XdrReader(body));
    } catch (error) {
      if (!(error instanceof XdrError)) throw error;
    }
  }
});
