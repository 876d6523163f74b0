/**
 * Login over real HTTP: the throttle counts an attempt before the (slow) argon2 verify, so 50
 * parallel wrong guesses get at most 5 answers other than 429; an unknown user costs the same
 * argon2 time as a known one (no timing oracle for names); the public route takes small bodies only.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createUser } from '../../src/auth/accounts.ts';
import { listAudit } from '../../src/auth/audit.ts';
import type { Store } from '../../src/store/open.ts';
import { startTestApi, type TestApi } from '../helpers/api-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;

let api: TestApi;

before(async () => {
  ({ store, app, port } = api = await startTestApi());
  await createUser(store.db, { name: 'alice', role: 'operator', password: 'correct horse battery' });
  await createUser(store.db, { name: 'bob', role: 'viewer', password: 'another long passphrase' });
});
after(async () => api.close());

// Each test logs in from its own loopback address, so the per-address count of one does not lock another.
const login = (name: string, password: string, from: string) =>
  rawRequest(port, {
    method: 'POST',
    target: '/api/v1/login',
    localAddress: from,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });

test('50 parallel wrong logins for one user: at most 5 are answered other than 429', async () => {
  const replies = await Promise.all(
    Array.from({ length: 50 }, (_, i) => login('alice', `wrong guess ${i}`, `127.0.1.${(i % 10) + 1}`)),
  );
  const statuses = replies.map((r) => r.status);
  const through = statuses.filter((s) => s !== 429);
  assert.ok(through.length <= 5, `${through.length} answered other than 429: ${statuses.join(',')}`);
  assert.ok(
    through.length >= 1 && through.every((s) => s === 401),
    `the first guesses were checked (401): ${statuses.join(',')}`,
  );
  assert.ok(replies.filter((r) => r.status === 429).every((r) => Number(r.headers['retry-after']) > 0));
  assert.equal(
    (await login('alice', 'correct horse battery', '127.0.1.99')).status,
    429,
    'even the right password waits now',
  );
  const audited = (await listAudit(store.db, { limit: 1000 })).filter((e) => e.actor === 'login:alice');
  assert.equal(audited.length, 51, 'every attempt is in the audit log');
});

test('an unknown user costs the same argon2 time as a wrong password for a known one', async () => {
  const time = async (name: string, i: number) => {
    const started = process.hrtime.bigint();
    const reply = await login(name, 'not the password', `127.0.2.${i + 1}`);
    assert.equal(reply.status, 401);
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  await time('nobody-warmup', 100); // the dummy hash is made once, ahead
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 4; i++) {
    known.push(await time('bob', i));
    unknown.push(await time(`nobody${i}`, 50 + i));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // Without the dummy verify an unknown name answered in about a millisecond, a known one in tens.
  assert.ok(
    median(unknown) > median(known) * 0.5,
    `unknown ${median(unknown).toFixed(1)} ms vs known ${median(known).toFixed(1)} ms`,
  );
  assert.equal(
    (await login('bob', 'another long passphrase', '127.0.2.200')).status,
    200,
    'the right password still works',
  );
});

test('the public login route takes small bodies only (413 beyond 16 KiB)', async () => {
  const big = await login('alice', 'x'.repeat(20 * 1024), '127.0.3.1');
  assert.equal(big.status, 413);
  const huge = await rawRequest(port, {
    method: 'POST',
    target: '/api/v1/login',
    localAddress: '127.0.3.2',
    headers: { 'content-type': 'application/json' },
    body: `{"name":"alice","password":"${'y'.repeat(1024 * 1024)}"}`,
  }).catch((error: Error) => ({ status: 0, error }));
  assert.ok(huge.status === 413 || huge.status === 0, `a 1 MiB body is refused (${huge.status})`);
});
