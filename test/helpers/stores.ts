/**
 * The store-backed tests run once per backend: the embedded store (PGlite) and a PostgreSQL
 * server (scripts/test.sh starts one and sets KVMFLEET_TEST_PG_URL). A missing server fails the run.
 */
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/open.ts';

export type Backend = 'embedded' | 'postgresql';
export const BACKENDS: readonly Backend[] = ['embedded', 'postgresql'];

export function postgresAdminUrl(): string {
  const url = process.env.KVMFLEET_TEST_PG_URL;
  if (!url) throw new Error('KVMFLEET_TEST_PG_URL is not set: run the tests with `npm test`, which starts PostgreSQL');
  return url;
}

/** A fresh, empty PostgreSQL database for one test file; returns its URL and a function that drops it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = postgresAdminUrl();
  const name = `kvt_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export async function openTestStore(backend: Backend): Promise<{ store: Store; dispose: () => Promise<void> }> {
  if (backend === 'embedded') {
    const store = await openStore({ dataDir: 'memory://' });
    return { store, dispose: () => store.close() };
  }
  const database = await createPostgresDatabase();
  const store = await openStore({ databaseUrl: database.url });
  return {
    store,
    async dispose() {
      await store.close();
      await database.drop();
    },
  };
}

export async function emptyStore(store: Store): Promise<void> {
  await sql`truncate sites, networks, profiles, hosts, host_macs, host_events, users, api_tokens, audit_log, leases restart identity cascade`.execute(
    store.db,
  );
}

/**
 * describe() once per backend with a store that is opened once and emptied before each test.
 * `ctx.store` is valid inside tests.
 */
export function describeEachStore(
  title: string,
  body: (ctx: { readonly store: Store; readonly backend: Backend }) => void,
): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend}]`, () => {
      let opened: Awaited<ReturnType<typeof openTestStore>> | undefined;
      const ctx = {
        backend,
        get store(): Store {
          if (!opened) throw new Error('store not open yet');
          return opened.store;
        },
      };
      before(async () => {
        opened = await openTestStore(backend);
      });
      after(async () => {
        await opened?.dispose();
      });
      beforeEach(async () => {
        await emptyStore(ctx.store);
      });
      body(ctx);
    });
  }
}

/** The same database through PostgreSQL's unix socket, for servers inside network namespaces. */
export function viaUnixSocket(url: string): string {
  const dir = process.env.KVMFLEET_TEST_PG_SOCKET_DIR;
  if (!dir) throw new Error('KVMFLEET_TEST_PG_SOCKET_DIR is not set: run the tests with npm test (scripts/test.sh)');
  const u = new URL(url);
  return `postgres://${u.username}@localhost:${u.port}${u.pathname}?host=${encodeURIComponent(dir)}`;
}
