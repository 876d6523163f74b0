/** The lease verdict the chaos scenarios rest on: a lost, moved or doubly given address is seen. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ackedIntegrity } from '../../chaos/lib/verdicts.ts';

const bound = (ip: string, mac: string) => ({ ip, mac, state: 'bound' });

test("every ACKed pair still the store's lease: nothing lost, nothing twice (repeats and MAC case do not count)", () => {
  const v = ackedIntegrity(
    [
      { mac: '02:0D:00:00:00:01', ip: '10.241.200.1' },
      { mac: '02:0d:00:00:00:01', ip: '10.241.200.1' },
      { mac: '02:0d:00:00:00:02', ip: '10.241.200.2' },
    ],
    [bound('10.241.200.1', '02:0d:00:00:00:01'), bound('10.241.200.2', '02:0d:00:00:00:02')],
  );
  assert.deepEqual(v, { acked: 2, lost: [], twice: [] });
});

test('a missing row, a row now of another client, a released one are lost; an address ACKed to two clients is twice', () => {
  const acks = [
    { mac: '02:0d:00:00:00:01', ip: '10.241.200.1' },
    { mac: '02:0d:00:00:00:02', ip: '10.241.200.2' },
    { mac: '02:0d:00:00:00:03', ip: '10.241.200.3' },
    { mac: '02:0d:00:00:00:04', ip: '10.241.200.3' },
    { mac: '02:0d:00:00:00:05', ip: '10.241.200.5' },
  ];
  const stored = [
    bound('10.241.200.2', '02:0d:00:00:00:09'),
    bound('10.241.200.3', '02:0d:00:00:00:03'),
    { ip: '10.241.200.5', mac: '02:0d:00:00:00:05', state: 'released' },
  ];
  const v = ackedIntegrity(acks, stored);
  assert.deepEqual(v.lost, [
    '02:0d:00:00:00:01 10.241.200.1',
    '02:0d:00:00:00:02 10.241.200.2',
    '02:0d:00:00:00:04 10.241.200.3',
    '02:0d:00:00:00:05 10.241.200.5',
  ]);
  assert.deepEqual(v.twice, ['10.241.200.3 (02:0d:00:00:00:03, 02:0d:00:00:00:04)']);
});
