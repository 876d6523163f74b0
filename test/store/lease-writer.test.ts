/**
 * The lease writer on both stores: the store decides who holds an address (one conditional
 * upsert), and one record the store refuses fails only its own caller, never its batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importSiteYaml } from '../../src/import/apply.ts';
import { LeaseRecordError, LeaseWriter, type LeaseRecord } from '../../src/store/lease-writer.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('lease writer', (ctx) => {
  let networkId = 0;
  const lease = (ip: string, mac: string, extra: Partial<LeaseRecord> = {}): LeaseRecord => ({
    ip,
    networkId,
    mac,
    clientId: null,
    hostname: null,
    state: 'bound',
    expiresAt: new Date(Date.now() + 600_000),
    ...extra,
  });
  const owner = async (ip: string) =>
    (await ctx.store.db.selectFrom('leases').select(['mac', 'state']).where('ip', '=', ip).executeTakeFirst()) ??
    undefined;
  const setup = async () => {
    await importSiteYaml(
      ctx.store.db,
      'sites:\n  - name: s\n    networks:\n      - { name: n, cidr: 10.5.0.0/24, dynamicRange: { start: 10.5.0.10, end: 10.5.0.200 } }\n',
    );
    networkId = (await ctx.store.db.selectFrom('networks').select('id').executeTakeFirstOrThrow()).id;
  };

  test('a record the store refuses (here: an unknown network) fails alone; the rest of its group commit', async () => {
    await setup();
    const writer = new LeaseWriter(ctx.store.db, 20);
    const results = await Promise.allSettled([
      writer.write(lease('10.5.0.10', '52:54:00:00:01:01')),
      writer.write(lease('10.5.0.11', '52:54:00:00:01:02', { networkId: 999_999 })),
      writer.write(lease('10.5.0.12', '52:54:00:00:01:03')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal((results[0] as PromiseFulfilledResult<boolean>).value, true);
    assert.match(String((results[1] as PromiseRejectedResult).reason.cause), /foreign key|violates/);
    assert.equal((await owner('10.5.0.10'))?.mac, '52:54:00:00:01:01');
    assert.equal((await owner('10.5.0.12'))?.mac, '52:54:00:00:01:03');
    assert.equal(writer.stats.failedBatches, 1);
  });

  test('a host name with a NUL byte is refused before the batch, not by the store', async () => {
    await setup();
    const writer = new LeaseWriter(ctx.store.db, 20);
    const results = await Promise.allSettled([
      writer.write(lease('10.5.0.20', '52:54:00:00:02:01', { hostname: 'bad\0name' })),
      writer.write(lease('10.5.0.21', '52:54:00:00:02:02', { hostname: 'good' })),
    ]);
    assert.ok(results[0].status === 'rejected' && results[0].reason instanceof LeaseRecordError);
    assert.equal(results[1].status, 'fulfilled');
    assert.equal(writer.stats.failedBatches, 0);
  });

  test('an address changes owner only when free: bound to another → refused; released, expired or past probation → taken', async () => {
    await setup();
    const writer = new LeaseWriter(ctx.store.db);
    const [a, b] = ['52:54:00:00:03:01', '52:54:00:00:03:02'];
    assert.equal(await writer.write(lease('10.5.0.30', a)), true);
    assert.equal(await writer.write(lease('10.5.0.30', b)), false, 'bound to a');
    assert.equal((await owner('10.5.0.30'))?.mac, a);
    assert.equal(
      await writer.write(lease('10.5.0.30', a, { state: 'declined', expiresAt: new Date(Date.now() + 600_000) })),
      true,
      'its owner declines it',
    );
    assert.equal(await writer.write(lease('10.5.0.30', a)), false, 'in probation: not even its owner');
    assert.equal(await writer.write(lease('10.5.0.30', b)), false, 'in probation');
    assert.equal(await writer.write(lease('10.5.0.31', a, { expiresAt: new Date(Date.now() - 1000) })), true);
    assert.equal(await writer.write(lease('10.5.0.31', b)), true, 'expired');
    assert.equal(await writer.write(lease('10.5.0.32', a, { state: 'released', expiresAt: new Date() })), true);
    assert.equal(await writer.write(lease('10.5.0.32', b)), true, 'released');
    assert.equal(writer.stats.refused, 3);
  });

  test('keyed by client identifier when present: another MAC with the same id renews, the same MAC with another id does not', async () => {
    await setup();
    const writer = new LeaseWriter(ctx.store.db);
    assert.equal(await writer.write(lease('10.5.0.40', '52:54:00:00:04:01', { clientId: '01aabbcc' })), true);
    assert.equal(await writer.write(lease('10.5.0.40', '52:54:00:00:04:02', { clientId: '01aabbcc' })), true);
    assert.equal(await writer.write(lease('10.5.0.40', '52:54:00:00:04:02', { clientId: '01ddeeff' })), false);
  });

  test('two writers (two servers on one store) racing for one free address: exactly one wins', async () => {
    await setup();
    const writers = [new LeaseWriter(ctx.store.db, 1), new LeaseWriter(ctx.store.db, 1)];
    for (let i = 0; i < 20; i++) {
      const ip = `10.5.0.${100 + i}`;
      const won = await Promise.all(writers.map((w, n) => w.write(lease(ip, `52:54:00:00:05:0${n}`))));
      assert.equal(won.filter(Boolean).length, 1, `${ip}: ${won}`);
    }
  });
});
