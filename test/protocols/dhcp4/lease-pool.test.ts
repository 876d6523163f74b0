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

test('lease pool: at most maxClients clients remembered, oldest offers forgotten first, a held binding never', () => {
  const pool = new LeasePool({ start: 100, end: 103 }, () => false, { maxClients: 6 });
  const now = 1_000_000;
  pool.hold(100, 'bound-1', 'bound', now + 600_000);
  pool.hold(101, 'bound-2', 'bound', now + 600_000);
  // 1 000 clients come and go through the two other addresses (their offers lapse at once).
  for (let i = 0; i < 1000; i++) {
    const t = now + i * 10;
    const ip = pool.choose(`c${i}`, t)!;
    assert.ok(ip === 102 || ip === 103, `c${i} offered ${ip}`);
    pool.hold(ip, `c${i}`, 'offered', t + 5);
  }
  const stats = pool.stats(now + 10_000);
  assert.ok(stats.entries <= 6 + 4, `${stats.entries} entries`);
  assert.equal(pool.heldBy('bound-1', now + 10_000), 100, 'the first binding is still found');
  assert.equal(pool.heldBy('bound-2', now + 10_000), 101);
  assert.equal(
    pool.choose('bound-1', now + 10_000),
    100,
    'a bound client is offered its own address, never a second one',
  );
  // The cap is never below the range + 1: every address can be bound and one more client seen.
  assert.equal(new LeasePool({ start: 1, end: 10 }, () => false, { maxClients: 2 }).maxClients, 11);
});
