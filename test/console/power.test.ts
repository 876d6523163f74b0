/** The console's power helpers (console/src/power.ts): labels of a reading, and no request without a confirmation. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { confirmText, powerLabel, sendPower } from '../../console/src/power.ts';

test('a reading as the hosts table shows it: state, and the error code with when it was read', () => {
  assert.equal(powerLabel(undefined).text, '—');
  assert.equal(powerLabel({ state: 'on', checkedAt: '2026-12-02T04:00:00.000Z' }).text, 'on');
  const unknown = powerLabel({ state: 'unknown', checkedAt: '2026-12-02T04:00:00.000Z', error: 'KVMF_ERR_BMC_AUTH' });
  assert.equal(unknown.text, 'unknown');
  assert.match(unknown.title, /^KVMF_ERR_BMC_AUTH, read /);
});

test('off and cycle say the power is cut; a declined confirmation sends nothing', async () => {
  assert.equal(confirmText('hv1', 'on'), 'Power on hv1?');
  assert.match(confirmText('hv1', 'off'), /^Power off hv1 now\? .*without a shutdown/);
  assert.match(confirmText('hv1', 'cycle'), /^Power cycle hv1 now\?/);
  const asked: string[] = [];
  const fetched: unknown[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (...args: unknown[]) => {
    fetched.push(args);
    throw new Error('no request should be made');
  }) as typeof fetch;
  try {
    const sent = await sendPower('hv1', 'off', (q) => (asked.push(q), false));
    assert.equal(sent, false);
    assert.equal(asked.length, 1);
    assert.deepEqual(fetched, []);
  } finally {
    globalThis.fetch = realFetch;
  }
});
