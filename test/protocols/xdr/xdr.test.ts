import assert from 'node:assert/strict';
import { test } from 'node:test';
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
