/**
 * Opens the store: PGlite under a data directory (the embedded default) or a PostgreSQL server
 * when a postgres:// URL is given. Both speak the same SQL; migrations run before it is returned.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { KvmfleetError, ErrorCode } from '../errors.ts';
import { acquireDataDirLock, type DataDirLock } from './lock.ts';
import { postgresProbe, StoreHealth } from './health.ts';
import { migrationProvider } from './migrations.ts';
import { PgliteDialect } from './pglite-dialect.ts';
import type { Database } from './schema.ts';

export interface StoreOptions {
  /** postgres://… selects a PostgreSQL server; otherwise the embedded store is used. */
  readonly databaseUrl?: string | undefined;
  /** Directory of the embedded store; `memory://` keeps it in memory (tests). */
  readonly dataDir?: string | undefined;
}

export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: 'embedded' | 'postgresql';
  /** Whether the store is reachable (readiness), from the process's own queries and a probe of its own. */
  readonly health: StoreHealth;
  close(): Promise<void>;
}

// pg returns int8 (count(*), bigserial) as strings; our ids and counts fit in a double.
pg.types.setTypeParser(20, (value: string) => Number(value));

export async function openStore(options: StoreOptions): Promise<Store> {
  const url = options.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    // A store that stops answering must not hang requests: they fail after this and the caller
    // falls back (boot scripts answer from the cache) or reports it.
    const timeoutMs = Number(process.env.KVMFLEET_STORE_TIMEOUT_MS ?? 10_000);
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      keepAlive: true,
    });
    pool.on('error', () => {}); // an idle client whose server went away: the pool drops it
    const probe = postgresProbe(url);
    const health = new StoreHealth(probe.probe);
    // A client checked out of the pool has no 'error' listener (pg-pool takes its idle one off), so
    // a connection lost between two queries of a transaction would be an uncaught error that ends
    // every role. Each client keeps one of its own: the transaction's next query fails instead, and
    // the pool drops the client when it is released (it is no longer queryable).
    pool.on('connect', (client) => client.on('error', (error: Error) => health.noteFailure(error)));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: health.onQuery });
    await migrate(db);
    return {
      db,
      kind: 'postgresql',
      health,
      async close() {
        await probe.close();
        await db.destroy();
      },
    };
  }
  if (url) throw new KvmfleetError(ErrorCode.BadRequest, `unsupported database URL (want postgres://…): ${url}`);

  const dataDir = options.dataDir ?? './data';
  let lock: DataDirLock | undefined;
  let pglite: PGlite;
  if (dataDir === 'memory://') {
    pglite = new PGlite();
  } else {
    mkdirSync(dataDir, { recursive: true });
    // PGlite has no inter-process locking: two processes on one directory would corrupt it.
    lock = await acquireDataDirLock(dataDir);
    pglite = await openPglite(join(dataDir, 'pg'));
  }
  // In-process: a query that waits is queued behind the storm's, not unreachable. The probe runs
  // only when no query succeeded for FRESH_MS, i.e. when the process is idle.
  const health: StoreHealth = new StoreHealth(async () => void (await pglite.query('select 1')));
  const db = new Kysely<Database>({ dialect: new PgliteDialect(pglite), log: health.onQuery });
  try {
    await migrate(db);
  } catch (error) {
    await db.destroy().catch(() => {});
    await lock?.release();
    throw error;
  }
  return {
    db,
    kind: 'embedded',
    health,
    async close() {
      await db.destroy();
      await lock?.release();
    },
  };
}

/**
 * The embedded store is small (a fleet's inventory, leases, events): PostgreSQL's default 128 MB of
 * shared buffers would only pin memory. And initdb, run in this process on a new directory, grows
 * the WebAssembly heap to ~700 MiB, which a WebAssembly memory never gives back; so a new
 * directory is initialised, closed and opened again — measured here: an all-in-one `kvmfleet serve`
 * on a fresh store then holds ~400 MiB instead of ~860 MiB.
 */
const PGLITE_CONF = { postgresqlconf: ['shared_buffers = 16MB'] };

/** A full garbage collection, once, at start-up (V8 exposes gc() only behind a flag; this sets it for a fresh context). */
function collectGarbageNow(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

async function openPglite(dir: string): Promise<PGlite> {
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    const init = new PGlite(dir, PGLITE_CONF);
    await init.waitReady;
    await init.close();
    collectGarbageNow(); // the initdb heap is unreachable now: give it back before it is counted
  }
  const pglite = new PGlite(dir, PGLITE_CONF);
  await pglite.waitReady;
  return pglite;
}

async function migrate(db: Kysely<Database>): Promise<void> {
  // Unordered: a migration may take a free number below one already released (0007 after 0009) and
  // still run on stores that ran the later ones; migrations never depend on a higher-numbered one.
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: 'kvmfleet_migrations',
    migrationLockTableName: 'kvmfleet_migrations_lock',
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`store migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
