/**
 * `kvmfleet serve` runs the build-timeout and retention sweeps on its own (a real process on
 * PostgreSQL, flags as an operator gives them): a build past its deadline fails, and old audit
 * entries go, with no host booting and no API call.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { hostTimeline } from '../../src/fleet/builds.ts';
import { listHosts } from '../../src/fleet/hosts.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
let store: Store;
let server: ServerProcess;

before(async () => {
  database = await createPostgresDatabase();
  store = await openStore({ databaseUrl: database.url });
});
after(async () => {
  await server?.kill();
  await store?.close();
  await database?.drop();
});

test('serve fails a stale build and drops old audit entries by itself', async () => {
  const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: 1 });
  await importSiteYaml(store.db, yaml);
  await importHostsCsv(store.db, csv);
  const [host] = await listHosts(store.db);
  // A build that started 2 minutes ago (database time) against a 1-minute timeout.
  await sql`update hosts set build_state = 'building', build_started_at = now() - interval '2 minutes' where hostname = ${host!.hostname}`.execute(
    store.db,
  );
  await sql`insert into audit_log (actor, action, target, result, at) values ('alice', 'POST /api/v1/sites', 'old', '201', now() - interval '3 days'), ('alice', 'POST /api/v1/sites', 'new', '201', now())`.execute(
    store.db,
  );
  server = await startServer([
    '--database-url',
    database.url,
    '--build-timeout-min',
    '1',
    '--build-sweep-seconds',
    '1',
    '--retain-audit-days',
    '2',
    '--retention-sweep-seconds',
    '1',
  ]);
  const deadline = Date.now() + 10_000;
  let state = '';
  while (Date.now() < deadline) {
    state = (
      await store.db
        .selectFrom('hosts')
        .select('build_state')
        .where('hostname', '=', host!.hostname)
        .executeTakeFirstOrThrow()
    ).build_state;
    if (state === 'failed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(state, 'failed', 'failed by the sweep within 10 s');
  assert.deepEqual(
    (await hostTimeline(store.db, host!.hostname)).filter((e) => e.kind === 'build-failed').map((e) => e.detail),
    [{ reason: 'timeout', timeoutMs: 60_000 }],
  );
  const targets = async () =>
    (await store.db.selectFrom('audit_log').select('target').orderBy('id').execute()).map((r) => r.target);
  while ((await targets()).includes('old') && Date.now() < deadline + 5000)
    await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await targets(), ['new'], "the 3-day-old entry went, today's stayed");
});
