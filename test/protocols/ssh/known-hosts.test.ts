/** known_hosts checking (src/protocols/ssh/known-hosts.ts): a pure function, every case. */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { verifyHostKey } from '../../../src/protocols/ssh/known-hosts.ts';

test('known_hosts: plain, [host]:port, hashed, changed, unknown, revoked', () => {
  const key = randomBytes(51);
  const other = randomBytes(51);
  const b64 = key.toString('base64');
  assert.deepEqual(verifyHostKey(`hv1,10.0.0.1 ssh-ed25519 ${b64}\n`, 'hv1', 22, key), { ok: true });
  assert.deepEqual(
    verifyHostKey(`hv1 ssh-ed25519 ${b64}\n`, 'hv1', 2222, key),
    { ok: false, reason: 'unknown' },
    'port 2222 is listed as [hv1]:2222',
  );
  assert.deepEqual(verifyHostKey(`[hv1]:2222 ssh-ed25519 ${b64}\n`, 'hv1', 2222, key), { ok: true });
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('hv2').digest('base64')}`;
  assert.deepEqual(verifyHostKey(`# comment\n\n${hashed} ssh-ed25519 ${b64}\n`, 'hv2', 22, key), { ok: true });
  assert.deepEqual(verifyHostKey(`${hashed} ssh-ed25519 ${b64}\n`, 'hv3', 22, key), { ok: false, reason: 'unknown' });
  assert.deepEqual(verifyHostKey(`hv1 ssh-ed25519 ${other.toString('base64')}\n`, 'hv1', 22, key), {
    ok: false,
    reason: 'changed',
  });
  assert.deepEqual(verifyHostKey(`@revoked * ssh-ed25519 ${b64}\nhv1 ssh-ed25519 ${b64}\n`, 'hv1', 22, key), {
    ok: false,
    reason: 'revoked',
  });
  assert.deepEqual(verifyHostKey('garbage\n|1|x ssh-ed25519\n', 'hv1', 22, key), { ok: false, reason: 'unknown' });
});
