/** libvirt's remote types read from XDR (src/protocols/libvirt/types.ts): errors, domains, untrusted bodies. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  LibvirtError,
  readDomain,
  readError,
  uuidToString,
  writeDomain,
  writeError,
} from '../../../src/protocols/libvirt/types.ts';
import { XdrError, XdrReader, XdrWriter } from '../../../src/protocols/xdr/xdr.ts';

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
