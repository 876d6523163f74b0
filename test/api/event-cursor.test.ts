/**
 * The live stream's cursor on PostgreSQL: an event whose transaction commits after a later one
 * (higher id) was already read is still told, not skipped.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { EventHub, type LiveEvent } from '../../src/api/events.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

let store: Store;
let database: { url: string; drop(): Promise<void> };
let hostId: number;

before(async () => {
  database = await createPostgresDatabase();
  store = await openStore({ databaseUrl: database.url });
  const row = await sql<{
    id: number;
  }>`insert into hosts (hostname, build_state) values ('hv1.lab', 'discovered') returning id`.execute(store.db);
  hostId = row.rows[0]!.id;
});
after(async () => {
  await store?.close();
  await database?.drop();
});

test('an event committed after a higher id was read is told (no skipped rows)', { timeout: 30_000 }, async () => {
  const hub = new EventHub(store.db, {}, 100, 60_000);
  const seen: string[] = [];
  hub.on('event', (e: LiveEvent) => void (e.type === 'host' && seen.push(e.kind)));
  await hub.start();
  // A second connection holds an insert open: its id is taken, its row not yet visible.
  const slow = new pg.Client({ connectionString: database.url });
  await slow.connect();
  try {
    await slow.query('begin');
    await slow.query(`insert into host_events (host_id, kind) values ($1, 'slow-commit')`, [hostId]);
    await sql`insert into host_events (host_id, kind) values (${hostId}, 'fast-commit')`.execute(store.db);
    const deadline = Date.now() + 10_000;
    while (!seen.includes('fast-commit')) {
      assert.ok(Date.now() < deadline, 'the committed event was never told');
      await new Promise((r) => setTimeout(r, 50));
    }
    await slow.query('commit');
    while (!seen.includes('slow-commit')) {
      assert.ok(Date.now() < deadline, `the late commit was skipped: ${seen.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(seen, ['fast-commit', 'slow-commit'], 'each told once');
  } finally {
    hub.stop();
    await slow.end();
  }
});
