/**
 * The site power-on pacing decision (bmc/power-pacing.ts) and its token bucket: table cases, and a
 * simulated site (cap, builds that take a while, hosts that boot and ask for a slot) run round by round.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decidePowerOn, defaultMargin, TokenBucket, type PacingInput } from '../../src/bmc/power-pacing.ts';

const base: PacingInput = {
  cap: 10,
  building: 0,
  poweredWaiting: 0,
  queuedOthers: 0,
  calls: 0,
  margin: 1,
  tokens: 100,
  maxParallel: 100,
  remaining: 100,
};

test('the decision, case by case', () => {
  const cases: [string, Partial<PacingInput>, { launch: number; reason: string }][] = [
    ['an empty site takes its cap plus the margin', {}, { launch: 11, reason: 'go' }],
    ['nothing left', { remaining: 0 }, { launch: 0, reason: 'done' }],
    ['fewer hosts than room', { remaining: 3 }, { launch: 3, reason: 'go' }],
    ['builds take slots', { building: 7 }, { launch: 4, reason: 'go' }],
    [
      'hosts powered on and not building fill the room',
      { building: 7, poweredWaiting: 4 },
      { launch: 0, reason: 'no-slot' },
    ],
    [
      'calls under way count as waiting',
      { building: 7, poweredWaiting: 2, calls: 2 },
      { launch: 0, reason: 'no-slot' },
    ],
    ['a full queue of others holds it off', { building: 10, queuedOthers: 1 }, { launch: 0, reason: 'queue-full' }],
    ['others queued take room first', { building: 5, queuedOthers: 4 }, { launch: 2, reason: 'go' }],
    ['an over-full site (cap lowered) lets only the margin wait', { cap: 2, building: 5 }, { launch: 1, reason: 'go' }],
    [
      'an over-full site with a waiting host holds',
      { cap: 2, building: 5, poweredWaiting: 1 },
      { launch: 0, reason: 'no-slot' },
    ],
    ['no tokens', { tokens: 0 }, { launch: 0, reason: 'rate' }],
    ['a fraction of a token is none', { tokens: 0.99 }, { launch: 0, reason: 'rate' }],
    ['tokens bound it', { tokens: 2 }, { launch: 2, reason: 'go' }],
    ['parallel calls full', { maxParallel: 3, calls: 3, cap: 100 }, { launch: 0, reason: 'parallel' }],
    ['parallel calls bound it', { maxParallel: 4, calls: 1 }, { launch: 3, reason: 'go' }],
    [
      'admission before the rate: no room, no matter the tokens',
      { cap: 0, margin: 0 },
      { launch: 0, reason: 'no-slot' },
    ],
    ['margin 0 on cap 1: one at a time', { cap: 1, margin: 0 }, { launch: 1, reason: 'go' }],
  ];
  for (const [what, change, expected] of cases) assert.deepEqual(decidePowerOn({ ...base, ...change }), expected, what);
});

test('the default margin: a tenth of the cap, at least one, none for a cap of 0', () => {
  assert.deepEqual([0, 1, 9, 10, 25, 500].map(defaultMargin), [0, 1, 1, 1, 2, 50]);
});

/**
 * A site round by round: a powered-on host asks for a slot after `bootRounds`, then builds for
 * `buildRounds`. Returns, per round, how many were powered on and not yet building, and when each
 * host was powered on.
 */
function simulate(o: { cap: number; margin: number; hosts: number; bootRounds: number; buildRounds: number }) {
  type Host = { poweredAt?: number; buildingAt?: number; builtAt?: number };
  const hosts: Host[] = Array.from({ length: o.hosts }, () => ({}));
  const waitingPerRound: number[] = [];
  for (let round = 0; round < 10_000 && hosts.some((h) => h.builtAt === undefined); round++) {
    // The boot server's admission: a host that has booted builds when a slot is free.
    for (const h of hosts) {
      if (h.buildingAt !== undefined && h.builtAt === undefined && round - h.buildingAt >= o.buildRounds)
        h.builtAt = round;
    }
    for (const h of hosts) {
      const building = hosts.filter((x) => x.buildingAt !== undefined && x.builtAt === undefined).length;
      if (
        h.poweredAt !== undefined &&
        h.buildingAt === undefined &&
        round - h.poweredAt >= o.bootRounds &&
        building < o.cap
      )
        h.buildingAt = round;
    }
    const building = hosts.filter((x) => x.buildingAt !== undefined && x.builtAt === undefined).length;
    const poweredWaiting = hosts.filter((x) => x.poweredAt !== undefined && x.buildingAt === undefined).length;
    const remaining = hosts.filter((x) => x.poweredAt === undefined);
    const d = decidePowerOn({
      ...base,
      cap: o.cap,
      margin: o.margin,
      building,
      poweredWaiting,
      remaining: remaining.length,
    });
    for (const h of remaining.slice(0, d.launch)) h.poweredAt = round;
    waitingPerRound.push(hosts.filter((x) => x.poweredAt !== undefined && x.buildingAt === undefined).length);
  }
  return { hosts, waitingPerRound };
}

test('cap 1, margin 0: one host at a time, each powered on only once the one before it is built', () => {
  const { hosts, waitingPerRound } = simulate({ cap: 1, margin: 0, hosts: 5, bootRounds: 2, buildRounds: 5 });
  assert.ok(
    hosts.every((h) => h.builtAt !== undefined),
    'all built',
  );
  assert.ok(Math.max(...waitingPerRound) <= 1);
  for (let i = 1; i < hosts.length; i++) assert.ok(hosts[i]!.poweredAt! >= hosts[i - 1]!.builtAt!, `host ${i}`);
});

test('cap 3, margin 1: never more waiting than the free slots plus one; the site is kept busy', () => {
  const { hosts, waitingPerRound } = simulate({ cap: 3, margin: 1, hosts: 30, bootRounds: 3, buildRounds: 10 });
  assert.ok(hosts.every((h) => h.builtAt !== undefined));
  assert.ok(Math.max(...waitingPerRound) <= 4, `waiting at most cap + margin (${Math.max(...waitingPerRound)})`);
  // With the margin the next host boots while a build runs: 30 hosts in about 10 builds' time each
  // of 3 slots, not 10 + boot time.
  const lastBuilt = Math.max(...hosts.map((h) => h.builtAt!));
  assert.ok(lastBuilt <= 10 * 11 + 10, `finished in ${lastBuilt} rounds`);
});

test('the token bucket: evenly spaced at its rate, no burst beyond one, time passed in', () => {
  const bucket = new TokenBucket(60, 0); // one a second
  assert.equal(bucket.take(0), true);
  assert.equal(bucket.take(0), false);
  assert.equal(bucket.msUntilNext(0), 1000);
  assert.equal(bucket.take(999), false);
  assert.equal(bucket.msUntilNext(999), 1);
  assert.equal(bucket.take(1000), true);
  assert.equal(bucket.available(60_000), 1, 'a long pause saves up one token only');
  // 10 minutes of asking every 7 ms: a call at most every second and at least every 1007 ms (the
  // tick lost at each take, as the bucket saves up no more than one token).
  const rate = new TokenBucket(60, 0);
  const taken: number[] = [];
  for (let t = 0; t <= 600_000; t += 7) if (rate.take(t)) taken.push(t);
  assert.ok(taken.length >= 596 && taken.length <= 601, `${taken.length} calls`);
  for (let i = 1; i < taken.length; i++) {
    const gap = taken[i]! - taken[i - 1]!;
    assert.ok(gap >= 1000 && gap <= 1007, `gap ${gap}`);
  }
  assert.throws(() => new TokenBucket(0, 0), RangeError);
});

test('the rate honoured with pacing on top: 1000 hosts at 600/min on a site that takes all take 100 s', () => {
  const bucket = new TokenBucket(600, 0);
  let remaining = 1000;
  let last = 0;
  for (let t = 0; remaining > 0 && t < 1_000_000; t += 10) {
    const d = decidePowerOn({ ...base, cap: 10_000, remaining, tokens: bucket.available(t) });
    for (let i = 0; i < d.launch; i++) {
      assert.ok(bucket.take(t));
      remaining -= 1;
      last = t;
    }
  }
  assert.equal(remaining, 0);
  assert.ok(last >= 99_900 && last <= 100_000, `last started at ${last} ms`);
});
