import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeasePool } from '../../../src/protocols/dhcp4/lease-pool.ts';

test('lease pool: an offer never shortens a binding; a decline survives its client moving on', () => {
  const pool = new LeasePool({ start: 100, end: 103 });
  const now = 1_000_000;
  pool.hold(100, 'a', 'bound', now + 600_000);
  // The bound client DISCOVERs: it is offered its address, and its binding stays as long as it was.
  assert.equal(pool.choose('a', now), 100);
  pool.hold(100, 'a', 'offered', now + 30_000);
  assert.deepEqual(pool.holder(100, now + 60_000), { ip: 100, mac: 'a', kind: 'bound', until: now + 600_000 });
  // It declines the address, DISCOVERs again and is offered another: the decline stays.
  pool.hold(100, 'a', 'declined', now + 86_400_000);
  const next = pool.choose('a', now)!;
  assert.notEqual(next, 100);
  pool.hold(next, 'a', 'offered', now + 30_000);
  assert.equal(pool.holder(100, now + 60_000)?.kind, 'declined');
  assert.equal(pool.availableTo(100, 'a', now), false);
  assert.equal(pool.availableTo(100, 'b', now), false);
  // Binding elsewhere drops the client's earlier binding; an earlier offer lapses on a new offer.
  pool.hold(102, 'c', 'bound', now + 600_000);
  pool.hold(103, 'c', 'bound', now + 600_000);
  assert.equal(pool.holder(102, now), undefined);
  assert.equal(pool.stats(now).declined, 1);
});
