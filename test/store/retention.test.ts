/**
 * Retention on both stores, with rows back-dated in SQL: old host events, audit entries and
 * finished jobs go, in batches; recent rows, unfinished jobs and each host's latest event of every
 * kind (what the console's timeline reads) stay.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { stepTimes } from '../../console/src/timeline.ts';
import { hostTimeline } from '../../src/fleet/builds.ts';
import { listHosts } from '../../src/fleet/hosts.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { startRetentionSweep, sweepRetention, DEFAULT_RETENTION } from '../../src/store/retention.ts';
import type { JobState } from '../../src/store/schema.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('retention', (ctx) => {
  const db = () => ctx.store.db;
  const seedHosts = async (n: number) => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: n });
    await importSiteYaml(db(), yaml);
    await importHostsCsv(db(), csv);
    return (await listHosts(db())).sort((a, b) => a.hostname.localeCompare(b.hostname));
  };
  const hostId = async (hostname: string) =>
    (await db().selectFrom('hosts').select('id').where('hostname', '=', hostname).executeTakeFirstOrThrow()).id;
  /** An event `daysAgo` old in the database's time (ids in insertion order, as in real life). */
  const event = async (id: number, kind: string, daysAgo: number) =>
    sql`insert into host_events (host_id, kind, at) values (${id}, ${kind}, now() - make_interval(days => ${daysAgo}))`.execute(
      db(),
    );
  const audit = async (daysAgo: number, target: string) =>
    sql`insert into audit_log (actor, action, target, result, at) values ('alice', 'POST /api/v1/sites', ${target}, '201', now() - make_interval(days => ${daysAgo}))`.execute(
      db(),
    );
  const job = async (state: JobState, finishedDaysAgo: number | null, createdDaysAgo = 100) =>
    (
      await sql<{ id: number }>`insert into jobs (kind, state, total, params, results, created_at, finished_at)
        values ('bulk-clone', ${state}, 2, '{}', ${JSON.stringify([{ name: 'vm-1', ok: true }])},
                now() - make_interval(days => ${createdDaysAgo}),
                ${finishedDaysAgo === null ? null : sql`now() - make_interval(days => ${finishedDaysAgo})`})
        returning id`.execute(db())
    ).rows[0]!.id;
  const count = async (table: 'host_events' | 'audit_log' | 'jobs') =>
    Number((await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(db())).rows[0]!.n);

  test("old host events go, except each host's latest event of each kind; the console still reads the install", async () => {
    const [a, b] = await seedHosts(2);
    const [ia, ib] = [await hostId(a!.hostname), await hostId(b!.hostname)];
    // a: installed 40 days ago, its DHCP renewed since.
    for (const [kind, days] of [
      ['dhcp', 41],
      ['tftp', 41],
      ['dhcp', 41],
      ['build-started', 41],
      ['script', 41],
      ['kernel', 41],
      ['kickstart', 40],
      ['built', 40],
      ['dhcp', 35],
      ['dhcp', 1],
    ] as const)
      await event(ia, kind, days);
    // b: nothing but old DISCOVERs and scripts.
    for (let i = 0; i < 5; i++) await event(ib, 'dhcp', 60 - i);
    await event(ib, 'script', 50);
    const result = await sweepRetention(db(), DEFAULT_RETENTION, 2);
    assert.equal(result.hostEvents, 3 + 4, 'a: three older DHCPs; b: four older DHCPs');
    const timelineA = await hostTimeline(db(), a!.hostname);
    assert.deepEqual(
      timelineA.map((e) => e.kind),
      ['tftp', 'build-started', 'script', 'kernel', 'kickstart', 'built', 'dhcp'],
    );
    assert.deepEqual(
      [...stepTimes(timelineA).keys()],
      ['tftp', 'script', 'kernel', 'kickstart', 'built'],
      'the console still shows the install reached built',
    );
    assert.deepEqual(
      (await hostTimeline(db(), b!.hostname)).map((e) => e.kind),
      ['dhcp', 'script'],
    );
    assert.equal((await sweepRetention(db(), DEFAULT_RETENTION)).hostEvents, 0, 'a second sweep finds nothing');
  });

  test('audit entries older than the audit age go, in batches; newer ones stay', async () => {
    for (let i = 0; i < 7; i++) await audit(366 + i, `old-${i}`);
    await audit(364, 'kept');
    await audit(0, 'now');
    assert.equal((await sweepRetention(db(), DEFAULT_RETENTION, 3)).audit, 7, 'three batches of at most three');
    assert.deepEqual(
      (await db().selectFrom('audit_log').select('target').orderBy('id').execute()).map((r) => r.target),
      ['kept', 'now'],
    );
  });

  test('finished jobs (and their items) older than the job age go; running, queued and recent ones stay', async () => {
    await db().deleteFrom('jobs').execute();
    const gone = [
      await job('succeeded', 31),
      await job('failed', 40),
      await job('partial', 90),
      await job('cancelled', 31),
    ];
    const kept = [
      await job('succeeded', 29),
      await job('running', null),
      await job('queued', null),
      await job('failed', 1),
    ];
    const result = await sweepRetention(db(), DEFAULT_RETENTION);
    assert.equal(result.jobs, gone.length);
    assert.deepEqual(
      (await db().selectFrom('jobs').select('id').orderBy('id').execute()).map((r) => r.id),
      kept,
    );
  });

  test('an age of 0 keeps rows for ever', async () => {
    const [a] = await seedHosts(1);
    const id = await hostId(a!.hostname);
    await event(id, 'dhcp', 900);
    await event(id, 'dhcp', 800);
    await audit(900, 'ancient');
    await db().deleteFrom('jobs').execute();
    await job('succeeded', 900);
    assert.deepEqual(await sweepRetention(db(), { hostEventsDays: 0, auditDays: 0, jobsDays: 0 }), {
      hostEvents: 0,
      audit: 0,
      jobs: 0,
    });
    assert.deepEqual([await count('host_events'), await count('audit_log'), await count('jobs')], [2, 1, 1]);
  });

  test('the periodic sweep deletes on its own', async () => {
    for (let i = 0; i < 4; i++) await audit(400, `old-${i}`);
    const errors: unknown[] = [];
    const sweep = startRetentionSweep(db(), DEFAULT_RETENTION, (e) => errors.push(e), 20);
    try {
      const deadline = Date.now() + 5000;
      while ((await count('audit_log')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await sweep.stop();
    }
    assert.equal(await count('audit_log'), 0);
    assert.deepEqual(errors, []);
  });
});

test('store upkeep: the first run comes after firstAfterMs, not a whole interval later; none after stop', async () => {
  const { startPeriodic } = await import('../../src/store/periodic.ts');
  let runs = 0;
  const periodic = startPeriodic(
    3_600_000,
    async () => void (runs += 1),
    () => {},
    20,
  );
  for (let waited = 0; runs === 0 && waited < 10_000; waited += 20)
    await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(runs, 1, 'the first run came long before the hour-long interval');
  await periodic.stop();
  await periodic.runNow();
  assert.equal(runs, 1, 'no run after stop');
});
