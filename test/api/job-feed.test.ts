/**
 * Job progress for the live stream from the store (src/api/job-feed.ts): a job run by a worker in
 * another process is followed item by item; one run here, already told by its JobRunner, is not
 * told twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobProgressFeed } from '../../src/api/job-feed.ts';
import type { JobState } from '../../src/store/schema.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('job progress feed', (ctx) => {
  const item = (name: string, ok = true) => ({
    name,
    hypervisor: 'hv1',
    ok,
    ms: 10,
    ...(ok ? {} : { error: 'no space' }),
  });
  const newJob = async (state: JobState, total: number) =>
    (
      await ctx.store.db
        .insertInto('jobs')
        .values({ kind: 'bulk-clone', state, total, params: JSON.stringify({}), results: '[]' })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
  const write = (id: number, state: JobState, results: ReturnType<typeof item>[]) =>
    ctx.store.db
      .updateTable('jobs')
      .set({
        state,
        done: results.length,
        failed: results.filter((r) => !r.ok).length,
        results: JSON.stringify(results),
        finished_at: ['queued', 'running'].includes(state) ? null : new Date().toISOString(),
      })
      .where('id', '=', id)
      .execute();
  const brief = (events: Awaited<ReturnType<JobProgressFeed['poll']>>) =>
    events.map((e) => `${e.state} ${e.done}/${e.total} f${e.failed}${e.item ? ` ${e.item.name}` : ''}`);

  test('a job run elsewhere: its state, then each item once, then its end', async () => {
    const feed = new JobProgressFeed(ctx.store.db);
    await feed.sync();
    const id = await newJob('queued', 3);
    assert.deepEqual(brief(await feed.poll()), ['queued 0/3 f0']);
    assert.deepEqual(brief(await feed.poll()), [], 'nothing new');
    await write(id, 'running', [item('a')]);
    assert.deepEqual(brief(await feed.poll()), ['running 1/3 f0 a', 'running 1/3 f0']);
    await write(id, 'partial', [item('a'), item('b', false), item('c')]);
    assert.deepEqual(brief(await feed.poll()), ['running 2/3 f1 b', 'running 3/3 f1 c', 'partial 3/3 f1']);
    assert.deepEqual(brief(await feed.poll()), [], 'a finished job is not followed any more');
  });

  test('a job run here is told by its runner; the store adds nothing, even when it lags behind', async () => {
    const feed = new JobProgressFeed(ctx.store.db);
    await feed.sync();
    const id = await newJob('running', 2); // claimed by this process's worker
    feed.noteLocal({ job: id, state: 'running', done: 1, failed: 0, total: 2, item: item('a') }); // told before its row is written
    assert.deepEqual(brief(await feed.poll()), []);
    await write(id, 'running', [item('a')]);
    assert.deepEqual(brief(await feed.poll()), []);
    feed.noteLocal({ job: id, state: 'running', done: 2, failed: 0, total: 2, item: item('b') });
    await write(id, 'running', [item('a'), item('b')]);
    await write(id, 'succeeded', [item('a'), item('b')]);
    feed.noteLocal({ job: id, state: 'succeeded', done: 2, failed: 0, total: 2 });
    assert.deepEqual(brief(await feed.poll()), []);
  });

  test('jobs running before the stream started are followed from where they are', async () => {
    const id = await newJob('running', 3);
    await write(id, 'running', [item('a'), item('b')]);
    const feed = new JobProgressFeed(ctx.store.db);
    await feed.sync();
    assert.deepEqual(brief(await feed.poll()), []);
    await write(id, 'succeeded', [item('a'), item('b'), item('c')]);
    assert.deepEqual(brief(await feed.poll()), ['running 3/3 f0 c', 'succeeded 3/3 f0']);
  });
});
