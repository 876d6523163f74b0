/**
 * A throwaway PostgreSQL server for the bench (as scripts/test.sh starts one for the tests), but with
 * its defaults for durability left on (fsync, synchronous_commit): the DHCP rows compare servers
 * that commit each lease, so a commit must reach the disk. Servers inside network namespaces reach it
 * through its unix socket (their 127.0.0.1 is their own); tools outside use TCP on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const USER = 'kvmfleet';

export interface BenchPostgres {
  readonly port: number;
  readonly socketDir: string;
  /** Creates an empty database; returns its name. */
  createDatabase(name: string): Promise<string>;
  /** A URL for a server inside a namespace (through the unix socket). */
  socketUrl(database: string): string;
  stop(): Promise<void>;
}

function serverBin(): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  const latest = versions.at(-1);
  if (!latest) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  return join('/usr/lib/postgresql', latest, 'bin');
}

export async function startPostgres(): Promise<BenchPostgres> {
  const bin = serverBin();
  const dir = mkdtempSync(join(tmpdir(), 'kvb-pg-'));
  const asPg = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asPg.length) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout), 0);
  const cmd = (file: string, args: string[]) =>
    asPg.length ? run(asPg[0]!, [...asPg.slice(1), join(bin, file), ...args]) : run(join(bin, file), args);
  const port = 20000 + Math.floor(Math.random() * 20000);
  await cmd('initdb', ['-D', join(dir, 'data'), '-U', USER, '--auth=trust', '-E', 'UTF8']);
  await cmd('pg_ctl', [
    '-D',
    join(dir, 'data'),
    '-l',
    join(dir, 'server.log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`,
    'start',
  ]);
  const psql = (sql: string) =>
    run(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', USER, '-d', 'postgres', '-qc', sql]);
  return {
    port,
    socketDir: dir,
    async createDatabase(name) {
      if (!/^[a-z][a-z0-9_]{0,40}$/.test(name)) throw new Error(`bad database name ${name}`);
      await psql(`create database ${name}`);
      return name;
    },
    socketUrl: (database) => `postgres://${USER}@localhost:${port}/${database}?host=${encodeURIComponent(dir)}`,
    async stop() {
      await cmd('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
