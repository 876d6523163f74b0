/**
 * While the store does not answer, the API says so: 503 with Retry-After and a stable code, not
 * 500 "internal error" (found by `npm run chaos`'s pg-outage scenario). A real `kvmfleet serve` on
 * PostgreSQL, its connection through a socat forwarder the test kills and starts again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { isStoreUnavailable } from '../../src/store/unavailable.ts';
import { freePort, waitForPort } from '../helpers/sshd.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

let database: { url: string; drop(): Promise<void> };
let api: ServerProcess;
let forwarder: ChildProcess | undefined;
let port: number;

async function startForwarder(): Promise<void> {
  const direct = new URL(database.url);
  forwarder = spawn(
    'socat',
    [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:${direct.hostname}:${direct.port}`],
    { stdio: 'ignore', detached: true },
  );
  await waitForPort(port);
}

async function stopForwarder(): Promise<void> {
  const child = forwarder;
  forwarder = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGKILL'); // socat and the children it forked per connection
  await exited;
}

before(async () => {
  database = await createPostgresDatabase();
  port = await freePort();
  await startForwarder();
  const viaForwarder = new URL(database.url);
  viaForwarder.port = String(port);
  api = await startServer(['--roles', 'api', '--log-level', 'warn'], {
    KVMFLEET_DATABASE_URL: viaForwarder.toString(),
    KVMFLEET_STORE_TIMEOUT_MS: '2000',
  });
});

after(async () => {
  await api?.kill();
  await stopForwarder();
  await database?.drop();
});

test(
  'the store away: reads and writes answer 503 KVMF_ERR_STORE_UNAVAILABLE with Retry-After; back: 200 again',
  { timeout: 60_000 },
  async () => {
    assert.equal((await fetch(`${api.url}/api/v1/sites`)).status, 200, 'open mode on loopback, store reachable');
    await stopForwarder();
    for (const init of [
      {},
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'during-outage' }),
      },
    ]) {
      const reply = await fetch(`${api.url}/api/v1/sites`, init).catch((error: Error) => {
        throw new Error(
          `${init.method ?? 'GET'} failed (${error.message}); the server said:\n${api.lines.slice(-15).join('\n')}`,
        );
      });
      const body = (await reply.json()) as { error?: { code?: string } };
      assert.equal(reply.status, 503, `${init.method ?? 'GET'}: ${JSON.stringify(body)}`);
      assert.match(body.error?.code ?? '', /^KVMF_ERR_(STORE|AUDIT)_UNAVAILABLE$/);
      assert.ok(Number(reply.headers.get('retry-after')) >= 1, 'Retry-After says when to try again');
    }
    await startForwarder();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await fetch(`${api.url}/api/v1/sites`)).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(status, 200, 'the API serves again once the store answers');
  },
);

test('what counts as "the store does not answer", and what does not', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  for (const e of [
    coded('ECONNREFUSED'),
    Object.assign(coded('ENOENT', 'connect ENOENT /run/postgresql/.s.PGSQL.5432'), { syscall: 'connect' }),
    coded('57P01'),
    coded('08006'),
    coded('53100', 'could not extend file: No space left on device'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    new Error('wrapped', { cause: coded('ECONNRESET') }),
  ]) {
    assert.equal(isStoreUnavailable(e), true, e.message);
  }
  for (const e of [
    coded('23505', 'duplicate key'),
    coded('ENOENT', 'no such file: templates/x.hbs'),
    coded('42P01', 'relation does not exist'),
    new TypeError('x is undefined'),
    'not an error',
  ]) {
    assert.equal(isStoreUnavailable(e), false, String(e));
  }
});
