import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEBIAN_IPXE_FILES, FileStore } from '../../../src/protocols/tftp/files.ts';

const dir = mkdtempSync(join(tmpdir(), 'kvt-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const root = join(dir, 'root');
mkdirSync(join(root, 'sub'), { recursive: true });
writeFileSync(join(root, 'sub', 'a.txt'), 'hello');
writeFileSync(join(dir, 'secret'), 'outside');
symlinkSync(join(dir, 'secret'), join(root, 'escape'));
symlinkSync(join(root, 'sub', 'a.txt'), join(root, 'inside'));
symlinkSync('/etc', join(root, 'etc'));
const store = new FileStore({ root, builtins: DEBIAN_IPXE_FILES });

test('serves files under the root and symlinks that stay inside it', async () => {
  assert.deepEqual(await store.lookup('sub/a.txt'), { ok: true, data: Buffer.from('hello') });
  assert.deepEqual(await store.lookup('inside'), { ok: true, data: Buffer.from('hello') });
});

test('refuses symlinks that leave the root, and traversal', async () => {
  for (const name of ['escape', 'etc/passwd', '../secret', 'sub/../../secret', '/etc/passwd']) {
    const result = await store.lookup(name);
    assert.equal(result.ok, false, name);
    if (!result.ok) assert.equal(result.reason, 'access-violation', name);
  }
  const missing = await store.lookup('nope.bin');
  assert.equal(!missing.ok && missing.reason, 'not-found');
  const dirLookup = await store.lookup('sub');
  assert.equal(dirLookup.ok, false);
});

test('serves Debian iPXE binaries by name', async () => {
  const result = await store.lookup('undionly.kpxe');
  assert.equal(result.ok, true, 'the ipxe package must be installed');
  if (result.ok) assert.ok(result.data.length > 10_000);
});

test('a changed file is read again; an unchanged one comes from memory', async () => {
  const path = join(root, 'sub', 'a.txt');
  const first = await store.lookup('sub/a.txt');
  const again = await store.lookup('sub/a.txt');
  assert.ok(first.ok && again.ok && first.data === again.data, 'same buffer while unchanged');
  writeFileSync(path, 'changed!');
  utimesSync(path, new Date(), new Date(Date.now() + 5000));
  const changed = await store.lookup('sub/a.txt');
  assert.ok(changed.ok);
  if (changed.ok) assert.equal(changed.data.toString(), 'changed!');
});
