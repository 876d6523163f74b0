/**
 * 0007_bmc_credentials came after 0009_job_leases was released: a store that ran 0001–0006 and 0009
 * must take 0007 at its next start (Kysely refuses a migration named before the last one it ran
 * unless told that order may differ).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Kysely, Migrator, sql } from 'kysely';
import { PGlite } from '@electric-sql/pglite';
import { PgliteDialect } from '../../src/store/pglite-dialect.ts';
import { migrationProvider } from '../../src/store/migrations.ts';
import { openStore } from '../../src/store/open.ts';

test('a store migrated to 0009 before 0007 existed takes 0007 at its next start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvt-migrate-'));
  try {
    const pglite = new PGlite(join(dir, 'pg')); // where openStore keeps the embedded store
    const db = new Kysely<any>({ dialect: new PgliteDialect(pglite) });
    const all = await migrationProvider.getMigrations();
    const released = Object.fromEntries(Object.entries(all).filter(([name]) => name !== '0007_bmc_credentials'));
    const old = new Migrator({
      db,
      provider: { getMigrations: async () => released },
      migrationTableName: 'kvmfleet_migrations',
      migrationLockTableName: 'kvmfleet_migrations_lock',
    });
    assert.equal((await old.migrateToLatest()).error, undefined);
    const before = (
      await sql<{
        name: string;
        timestamp: string;
      }>`select name, timestamp from kvmfleet_migrations where name = '0009_job_leases'`.execute(db)
    ).rows[0];
    assert.ok(before);
    await db.destroy();

    const store = await openStore({ dataDir: dir });
    try {
      const ran = await sql<{ name: string }>`select name from kvmfleet_migrations order by name`.execute(store.db);
      assert.ok(ran.rows.some((r) => r.name === '0007_bmc_credentials'));
      // the store is the one migrated before, not a fresh one
      const again = (
        await sql<{
          timestamp: string;
        }>`select timestamp from kvmfleet_migrations where name = '0009_job_leases'`.execute(store.db)
      ).rows[0];
      assert.equal(String(again?.timestamp), String(before.timestamp));
      await sql`select id, name, username, secret from bmc_credentials`.execute(store.db);
      await sql`select bmc_secret from hosts`.execute(store.db);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
