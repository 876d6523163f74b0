/**
 * Tokens only shrink: a new token holds no permission its maker's token lacks (a scoped token
 * cannot make an unscoped one) and does not outlive it (a 12-hour session cannot mint one for
 * ever): 403 KVMF_ERR_TOKEN_EXCEEDS_CALLER, audited. Real HTTP on raw sockets.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { authenticateToken, createToken, createUser } from '../../src/auth/accounts.ts';
import { listAudit } from '../../src/auth/audit.ts';
import { ErrorCode } from '../../src/errors.ts';
import type { Store } from '../../src/store/open.ts';
import { startTestApi, type TestApi } from '../helpers/api-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;

let api: TestApi;

before(async () => {
  ({ store, app, port } = api = await startTestApi());
  await createUser(store.db, { name: 'root', role: 'admin', password: 'a long enough passphrase' });
});
after(async () => api.close());

const call = async (token: string, method: string, target: string, body?: unknown) => {
  const reply = await rawRequest(port, {
    method,
    target,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  return { status: reply.status, body: JSON.parse(reply.body || 'null') };
};

test('a scoped token cannot make an unscoped or a wider one; a narrower one it can', async () => {
  const { token: scoped } = await createToken(store.db, { user: 'root', name: 'rw', scopes: ['read', 'write'] });
  const unscoped = await call(scoped, 'POST', '/api/v1/tokens', { name: 'everything' });
  assert.equal(unscoped.status, 403);
  assert.equal(unscoped.body.error.code, ErrorCode.TokenExceedsCaller);
  assert.match(unscoped.body.error.message, /admin/);
  const wider = await call(scoped, 'POST', '/api/v1/tokens', { name: 'admin', scopes: ['read', 'admin'] });
  assert.equal(wider.status, 403);
  assert.equal(wider.body.error.code, ErrorCode.TokenExceedsCaller);
  const narrower = await call(scoped, 'POST', '/api/v1/tokens', { name: 'dashboards', scopes: ['read'] });
  assert.equal(narrower.status, 201, JSON.stringify(narrower.body));
  assert.deepEqual((await authenticateToken(store.db, narrower.body.token))?.permissions, ['read']);
  const refused = (await listAudit(store.db, { actor: 'root' })).filter(
    (e) => e.action === 'POST /api/v1/tokens' && e.result === '403',
  );
  assert.equal(refused.length, 2, 'both refusals are in the audit log');
});

test('a token scoped to admin alone cannot make a user (and so a token) with read and write', async () => {
  const { token: adminOnly } = await createToken(store.db, { user: 'root', name: 'admin-only', scopes: ['admin'] });
  const made = await call(adminOnly, 'POST', '/api/v1/users', { name: 'wide', role: 'admin', withToken: true });
  assert.equal(made.status, 403);
  assert.equal(made.body.error.code, ErrorCode.TokenExceedsCaller);
  assert.ok(
    (await listAudit(store.db, { actor: 'root' })).some((e) => e.action === 'POST /api/v1/users' && e.result === '403'),
  );
});

test('a session token cannot mint a longer-lived one; without an expiry, the new one expires with it', async () => {
  const session = await call('', 'POST', '/api/v1/login', { name: 'root', password: 'a long enough passphrase' });
  assert.equal(session.status, 200);
  const sessionEnds = new Date(session.body.expiresAt).getTime();
  for (const expiresInDays of [30, 1]) {
    const longer = await call(session.body.token, 'POST', '/api/v1/tokens', {
      name: `longer-${expiresInDays}`,
      expiresInDays,
    });
    assert.equal(longer.status, 403, `${expiresInDays} days outlive a 12-hour session`);
    assert.equal(longer.body.error.code, ErrorCode.TokenExceedsCaller);
  }
  const unspecified = await call(session.body.token, 'POST', '/api/v1/tokens', { name: 'default' });
  assert.equal(unspecified.status, 201);
  assert.ok(unspecified.body.expiresAt, 'not "never"');
  assert.ok(new Date(unspecified.body.expiresAt).getTime() <= sessionEnds);
  const shorter = await call(session.body.token, 'POST', '/api/v1/tokens', { name: 'short', expiresInDays: 0.25 });
  assert.equal(shorter.status, 201);
  assert.ok(new Date(shorter.body.expiresAt).getTime() <= sessionEnds);
  const user = await call(session.body.token, 'POST', '/api/v1/users', {
    name: 'ops',
    role: 'operator',
    withToken: true,
  });
  assert.equal(user.status, 201);
  const first = (await call(session.body.token, 'GET', '/api/v1/tokens')).body.find(
    (t: { user: string }) => t.user === 'ops',
  );
  assert.ok(
    first.expiresAt && new Date(first.expiresAt).getTime() <= sessionEnds,
    'a first token made by a session expires with it',
  );
});
