/**
 * The timeline writer's group commit on both stores: concurrent events share commits and all land,
 * in the order they were recorded; one event the store refuses fails only its own caller; drain
 * waits for what is queued.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { TimelineEventError, TimelineWriter } from '../../src/fleet/timeline-writer.ts';
import { hostTimeline } from '../../src/fleet/builds.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('timeline writer', (ctx) => {
  let hostId = 0;
  let hostname = '';
  const setup = async () => {
    const { yaml, csv, hostnames } = generateEnterprise({ sites: 1, hostsPerSite: 1, macPrefix: '52:54:06' });
    await importSiteYaml(ctx.store.db, yaml);
    await importHostsCsv(ctx.store.db, csv);
    hostname = hostnames[0]!;
    hostId = (await ctx.store.db.selectFrom('hosts').select('id').executeTakeFirstOrThrow()).id;
  };
  const events = async () =>
    ctx.store.db
      .selectFrom('host_events')
      .select(['host_id', 'kind', 'detail'])
      .where('host_id', '=', hostId)
      .orderBy('id')
      .execute();

  test('concurrent events go in fewer commits than events, all present and in order', async () => {
    await setup();
    const writer = new TimelineWriter(ctx.store.db, { windowMs: 20 });
    const n = 50;
    await Promise.all(Array.from({ length: n }, (_, i) => writer.record(hostId, 'script', { i })));
    const rows = await events();
    assert.deepEqual(
      rows.map((r) => r.detail),
      Array.from({ length: n }, (_, i) => ({ i })),
    );
    assert.ok(rows.every((r) => r.kind === 'script'));
    assert.equal(writer.stats.events, n);
    assert.ok(writer.stats.commits < n, `${writer.stats.commits} commits for ${n} events`);
    // The host's timeline (ordered by time, then id) reads them in the same order.
    const timeline = await hostTimeline(ctx.store.db, hostname);
    assert.deepEqual(
      timeline.map((t) => t.detail),
      Array.from({ length: n }, (_, i) => ({ i })),
    );
  });

  test('a batch is cut at maxBatch', async () => {
    await setup();
    const writer = new TimelineWriter(ctx.store.db, { windowMs: 20, maxBatch: 4 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.record(hostId, 'kernel', { i })));
    assert.equal(writer.stats.commits, 3);
    assert.equal((await events()).length, 10);
  });

  test('each promise resolves only once its event is in the store', async () => {
    await setup();
    const writer = new TimelineWriter(ctx.store.db, { windowMs: 5 });
    const seen: number[] = [];
    await Promise.all(
      [0, 1, 2].map((i) =>
        writer.record(hostId, 'kickstart', { i }).then(async () => {
          const rows = await events();
          seen.push(rows.filter((r) => (r.detail as { i: number }).i === i).length);
        }),
      ),
    );
    assert.deepEqual(seen, [1, 1, 1]);
  });

  test('an event the store refuses (an unknown host) fails alone; the rest of its batch commits', async () => {
    await setup();
    const writer = new TimelineWriter(ctx.store.db, { windowMs: 20 });
    const results = await Promise.allSettled([
      writer.record(hostId, 'script', { n: 1 }),
      writer.record(999_999, 'script', { n: 2 }),
      writer.record(hostId, 'script', { n: 3 }),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason.cause), /foreign key|violates/);
    assert.deepEqual(
      (await events()).map((r) => r.detail),
      [{ n: 1 }, { n: 3 }],
    );
    assert.equal(writer.stats.failedBatches, 1);
    assert.equal(writer.stats.failedRows, 1);
    assert.equal(writer.stats.events, 2);
  });

  test('a detail the store could not take (a NUL, a lone surrogate) is refused before the batch', async () => {
    await setup();
    const writer = new TimelineWriter(ctx.store.db, { windowMs: 20 });
    const results = await Promise.allSettled([
      writer.record(hostId, 'script', { ip: 'a\0b' }),
      writer.record(hostId, 'script', { ip: 'x\ud800' }),
      writer.record(hostId, 'script', { ip: 'back\\u0000slash' }),
      writer.record(0, 'script'),
    ]);
    assert.ok(results[0].status === 'rejected' && results[0].reason instanceof TimelineEventError);
    assert.ok(results[1].status === 'rejected' && results[1].reason instanceof TimelineEventError);
    assert.equal(results[2].status, 'fulfilled');
    assert.ok(results[3].status === 'rejected' && results[3].reason instanceof TimelineEventError);
    assert.equal(writer.stats.invalid, 3);
    assert.equal(writer.stats.failedBatches, 0);
    assert.deepEqual(
      (await events()).map((r) => r.detail),
      [{ ip: 'back\\u0000slash' }],
    );
  });

  test('drain commits what is queued without waiting out the window', async () => {
    await setup();
    const writer = new TimelineWriter(ctx.store.db, { windowMs: 60_000 });
    const settled: string[] = [];
    const pending = [1, 2, 3].map((i) => writer.record(hostId, 'initrd', { i }).then(() => settled.push(`e${i}`)));
    await writer.drain();
    assert.deepEqual(settled, ['e1', 'e2', 'e3']);
    assert.equal((await events()).length, 3);
    await Promise.all(pending);
    // Draining an idle writer returns at once.
    await writer.drain();
  });
});
