import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { keyIdOf, keyringOf, loadKeyring, parseKeys, SECRET_KEY_FILE } from '../../src/bmc/secret-box.ts';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return 'no error';
};

describe('secret box (AES-256-GCM keyring)', () => {
  const a = randomBytes(32);
  const b = randomBytes(32);

  it('seals under the first key with its id, opens with the same context only', () => {
    const ring = keyringOf([a]);
    const sealed = ring.seal('hunter2', 'host:1');
    assert.match(sealed, /^kvmf1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/);
    assert.equal(ring.keyIdOf(sealed), keyIdOf(a));
    assert.ok(!sealed.includes('hunter2') && !sealed.includes(Buffer.from('hunter2').toString('base64url')));
    assert.equal(ring.open(sealed, 'host:1'), 'hunter2');
    // copied to another row: the context (AAD) does not match
    assert.equal(
      code(() => ring.open(sealed, 'host:2')),
      'KVMF_ERR_SECRET_UNAVAILABLE',
    );
    // two seals of one text differ (fresh IV)
    assert.notEqual(ring.seal('hunter2', 'host:1'), sealed);
  });

  it('detects an altered ciphertext or tag', () => {
    const ring = keyringOf([a]);
    const parts = ring.seal('hunter2', 'c').split('.');
    const flip = (s: string) => {
      const buf = Buffer.from(s, 'base64url');
      buf[0]! ^= 1;
      return buf.toString('base64url');
    };
    for (const i of [2, 3, 4]) {
      const altered = parts.map((p, j) => (j === i ? flip(p) : p)).join('.');
      assert.equal(
        code(() => ring.open(altered, 'c')),
        'KVMF_ERR_SECRET_UNAVAILABLE',
        `part ${i}`,
      );
    }
  });

  it('rotation: a ring with a new first key still opens old texts and names a missing key', () => {
    const old = keyringOf([a]).seal('pw', 'c');
    const rotated = keyringOf([b, a]);
    assert.equal(rotated.currentId, keyIdOf(b));
    assert.equal(rotated.open(old, 'c'), 'pw');
    assert.equal(rotated.keyIdOf(rotated.seal('pw', 'c')), keyIdOf(b));
    assert.equal(
      code(() => keyringOf([b]).open(old, 'c')),
      'KVMF_ERR_SECRET_UNAVAILABLE',
    );
  });

  it('parses keys strictly', () => {
    assert.equal(parseKeys(`# comment\n${a.toString('base64')}\n\n${b.toString('base64')}\n`, 'f').length, 2);
    assert.equal(
      code(() => parseKeys(randomBytes(16).toString('base64'), 'f')),
      'KVMF_ERR_SECRET_UNAVAILABLE',
    );
    assert.equal(
      code(() => parseKeys('not base64!', 'f')),
      'KVMF_ERR_SECRET_UNAVAILABLE',
    );
    assert.equal(
      code(() => parseKeys('# only a comment', 'f')),
      'KVMF_ERR_SECRET_UNAVAILABLE',
    );
  });

  it('creates the key file 0600 on first use, reuses it, refuses it when others can read it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvmf-key-'));
    try {
      const first = loadKeyring(dir, {});
      const path = join(dir, SECRET_KEY_FILE);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(loadKeyring(dir, {}).currentId, first.currentId);
      assert.equal(parseKeys(readFileSync(path, 'utf8'), path).length, 1);
      chmodSync(path, 0o644);
      assert.equal(
        code(() => loadKeyring(dir, {})),
        'KVMF_ERR_SECRET_UNAVAILABLE',
      );
      // the environment wins over the file
      assert.equal(
        loadKeyring(dir, { KVMFLEET_SECRET_KEY: `${b.toString('base64')},${a.toString('base64')}` }).currentId,
        keyIdOf(b),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
