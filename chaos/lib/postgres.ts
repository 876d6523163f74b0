/**
 * A throwaway PostgreSQL cluster for one scenario (as scripts/test.sh starts one for the suite):
 * initdb in a temporary directory, owned by the postgres user when run as root, listening on
 * 127.0.0.1 and a unix socket — servers inside network namespaces reach it through the socket.
 * stop() and start() take it away and bring it back on the same port and data.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Undo } from './cleanup.ts';

const run = promisify(execFile);
type Defer = (label: string, undo: Undo) => () => Promise<void>;

export interface Postgres {
  /** The database for kvmfleet through the unix socket. */
  readonly socketUrl: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

function pgBin(): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  const last = versions.at(-1);
  if (!last) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  return join('/usr/lib/postgresql', last, 'bin');
}

export async function startPostgres(defer: Defer): Promise<Postgres> {
  const bin = pgBin();
  const dir = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-pg-'));
  const root = process.getuid?.() === 0;
  if (root) {
    const { uid, gid } = await postgresUser();
    chownSync(dir, uid, gid);
  }
  const as = (file: string, args: string[]) =>
    root ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const data = join(dir, 'data');
  await as(join(bin, 'initdb'), ['-D', data, '-U', 'kvmfleet', '--auth=trust', '-E', 'UTF8']);
  const start = () =>
    as(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off`,
      'start',
    ]).then(() => {});
  const stop = () =>
    as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']).then(
      () => {},
      () => {},
    );
  defer('PostgreSQL', async () => {
    await as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  await start();
  const admin = new pg.Client({ connectionString: `postgres://kvmfleet@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('create database chaos');
  await admin.end();
  return { socketUrl: `postgres://kvmfleet@localhost:${port}/chaos?host=${encodeURIComponent(dir)}`, stop, start };
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await run('id', ['postgres']);
  const uid = Number(/uid=(\d+)/.exec(stdout)?.[1]);
  const gid = Number(/gid=(\d+)/.exec(stdout)?.[1]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error('no postgres user: initdb does not run as root');
  return { uid, gid };
}
