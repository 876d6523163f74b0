/**
 * Opens the store: PGlite under a data directory (the embedded default) or a PostgreSQL server
 * when a postgres:// URL is given. Both speak the same SQL; migrations run before it is returned.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
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
 * shared buffers would only pin memory.
 */
const PGLITE_CONF = { postgresqlconf: ['shared_buffers = 16MB'] };

/**
 * PGlite is one WebAssembly module of ~9 MB. By default V8 compiles it twice: every function with
 * Liftoff at start, and again with TurboFan once it runs hot, keeping both and the optimiser's
 * working memory — measured here, ~40 MiB more resident than compiling it once, with TurboFan, at
 * start (about a second of start-up, on V8's background threads; queries run at TurboFan's speed
 * from the first). Set before the module is compiled; it applies to WebAssembly only.
 */
function compileWasmOnce(): void {
  setFlagsFromString('--no-liftoff');
}

/**
 * initdb, run in a process on a new directory, grows the WebAssembly heap to ~700 MiB, which a
 * WebAssembly memory never gives back, and leaves C++ heap behind that the allocator keeps (~65 MiB
 * measured here even after the instance is closed and collected). So a new directory is initialised
 * by a short-lived child process of its own (the same PGlite, the same settings), and this process
 * opens the result: an all-in-one `kvmfleet serve` on a fresh store holds what one on an existing
 * store holds.
 */
async function initialiseInChild(dir: string): Promise<void> {
  const pglite = import.meta.resolve('@electric-sql/pglite');
  const code = [
    `const { PGlite } = await import(${JSON.stringify(pglite)});`,
    `const db = new PGlite(process.argv[1], JSON.parse(process.argv[2]));`,
    'await db.waitReady;',
    'await db.close();',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, dir, JSON.stringify(PGLITE_CONF)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const [exitCode, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (exitCode !== 0 || !existsSync(join(dir, 'PG_VERSION')))
    throw new KvmfleetError(
      ErrorCode.Internal,
      `initialising the embedded store in ${dir} failed (${signal ?? exitCode}): ${stderr.trim()}`,
    );
}

async function openPglite(dir: string): Promise<PGlite> {
  if (!existsSync(join(dir, 'PG_VERSION'))) await initialiseInChild(dir);
  compileWasmOnce();
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
