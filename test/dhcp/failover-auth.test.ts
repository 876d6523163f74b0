import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BeatSealer, BeatVerifier, loadFailoverKey } from '../../src/boot/failover-auth.ts';

const key = Buffer.from('0123456789abcdef0123456789abcdef');

test('failover beats: authentic ones pass once; wrong key, tampering, replay and stale clocks are refused and counted', () => {
  const sealer = new BeatSealer(key);
  const verifier = new BeatVerifier(key, 30_000);
  const now = 1_700_000_000_000;
  const first = sealer.seal({ role: 'primary', state: 'normal' }, now);
  assert.deepEqual(verifier.open(first, now), { kvmfleet: 2, role: 'primary', state: 'normal', ts: now, seq: 1 });
  assert.equal(verifier.open(first, now + 10), undefined, 'replayed');
  const second = sealer.seal({ role: 'primary', state: 'normal' }, now);
  assert.equal(verifier.open(second, now)?.seq, 2, 'same millisecond, next sequence');
  assert.equal(
    verifier.open(
      new BeatSealer(Buffer.from('another key, 16+ bytes')).seal({ role: 'primary', state: 'normal' }, now + 5),
      now + 5,
    ),
    undefined,
    'wrong key',
  );
  const tampered = Buffer.from(
    sealer
      .seal({ role: 'primary', state: 'normal' }, now + 6)
      .toString()
      .replace('"normal"', '"partner-down"'),
  );
  assert.equal(verifier.open(tampered, now + 6), undefined, 'tampered');
  assert.equal(verifier.open(sealer.seal({ role: 'primary', state: 'normal' }, now - 60_000), now), undefined, 'stale');
  assert.equal(
    verifier.open(Buffer.from(JSON.stringify({ kvmfleet: 1, role: 'primary', state: 'normal' })), now),
    undefined,
    'the old unauthenticated format',
  );
  assert.deepEqual(verifier.refused, { malformed: 1, badMac: 2, stale: 1, replayed: 1 });
  // A restarted sender (new sequence, later clock) is heard at once.
  assert.equal(
    verifier.open(new BeatSealer(key).seal({ role: 'primary', state: 'recover' }, now + 2000), now + 2000)?.state,
    'recover',
  );
});

test('the key file: trimmed, at least 16 bytes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvt-key-'));
  try {
    writeFileSync(join(dir, 'ok'), '  0123456789abcdef0123\n');
    assert.equal(loadFailoverKey(join(dir, 'ok')).toString(), '0123456789abcdef0123');
    writeFileSync(join(dir, 'short'), 'secret\n');
    assert.throws(() => loadFailoverKey(join(dir, 'short')), /at least 16/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
