/**
 * Permissions are decided on the route Fastify matched, deny by default: every spelling of a path
 * (percent-encoding, absolute form, dot segments, doubled and trailing slashes) reaches the same
 * decision as the plain one or a 4xx, for a viewer and an operator, over real HTTP (raw sockets, so
 * nothing normalises the target); and every mutating attempt is in the audit log under its route.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { requirePermissionDeclarations } from '../../src/api/permissions.ts';
import { createToken, createUser } from '../../src/auth/accounts.ts';
import { listAudit, type AuditEntry } from '../../src/auth/audit.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;
const tokens: Record<'admin' | 'ops' | 'view', string> = { admin: '', ops: '', view: '' };

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  app = await buildApi({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    bootBaseUrl: 'http://boot.test:8081',
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  for (const [name, role] of [
    ['admin', 'admin'],
    ['ops', 'operator'],
    ['view', 'viewer'],
  ] as const) {
    await createUser(store.db, { name, role });
    tokens[name] = (await createToken(store.db, { user: name, name: 'test' })).token;
  }
});
after(async () => {
  await app.close();
  await store.close();
});

const as = (who: keyof typeof tokens, method: string, target: string, body?: unknown) =>
  rawRequest(port, {
    method,
    target,
    headers: {
      authorization: `Bearer ${tokens[who]}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });

/** Other spellings of one path: each must be decided as the plain one, or be a 4xx. */
function spellings(path: string): string[] {
  const segments = path.split('/');
  const last = segments.at(-1)!;
  const encodedFirst = `%${last.charCodeAt(0).toString(16)}${last.slice(1)}`;
  const encodedAll = [...last].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
  const parent = segments.slice(0, -1).join('/');
  return [
    path,
    `${parent}/${encodedFirst}`,
    `${parent}/${encodedAll}`,
    `${parent}/%25${last.charCodeAt(0).toString(16)}${last.slice(1)}`, // double encoding
    `http://kvmfleet.example${path}`, // absolute form
    `http://localhost:${port}${parent}/${encodedFirst}`,
    `${parent}/./${last}`,
    `${parent}/x/../${last}`,
    `${parent}/%2e/${last}`,
    `${parent}/%2E%2E/${segments.at(-2)}/${last}`,
    `/${path}`,
    `${parent}//${last}`,
    path.replace('/v1/', '//v1/'),
    `${path}/`,
    `${path}%2F`,
    `${path};x=1`,
    `${path}?x=1`,
    `${path}#frag`,
    `${parent}/${last.toUpperCase()}`,
  ];
}

async function auditOf(actor: string, target: string): Promise<AuditEntry | undefined> {
  return (await listAudit(store.db, { actor, limit: 10_000 })).find((e) => e.detail.path === target);
}

test('the plain spellings decide as declared (so the checks below could fail)', async () => {
  assert.equal((await as('admin', 'GET', '/api/v1/audit')).status, 200);
  assert.equal((await as('view', 'GET', '/api/v1/audit')).status, 403);
  assert.equal((await as('view', 'GET', '/api/v1/sites')).status, 200);
  assert.equal(
    (await as('ops', 'GET', '/api/v1/hosts/nope/kickstart')).status,
    404,
    'an operator may read Kickstarts (this host does not exist)',
  );
  assert.equal(
    (await as('admin', 'GET', '/api/v1/%61udit')).status,
    200,
    'Fastify routes the decoded path: the admin reaches the audit log through it',
  );
});

for (const who of ['view', 'ops'] as const) {
  test(`${who}: no spelling of the audit log or the users reads more than the plain path`, async () => {
    for (const target of [...spellings('/api/v1/audit'), ...spellings('/api/v1/users')]) {
      const reply = await as(who, 'GET', target);
      assert.ok(
        reply.status === 403 || reply.status === 404 || reply.status === 400,
        `${who} GET ${target} answered ${reply.status}: ${reply.body.slice(0, 200)}`,
      );
      assert.doesNotMatch(reply.body, /"actor"|"role"/, `${who} GET ${target} leaked data`);
    }
  });

  test(`${who}: every spelling of POST /api/v1/users is refused and audited under its route`, async () => {
    for (const target of spellings('/api/v1/users')) {
      const reply = await as(who, 'POST', target, { name: `eve-${who}`, role: 'admin', withToken: true });
      assert.ok(
        [400, 403, 404].includes(reply.status),
        `${who} POST ${target} answered ${reply.status}: ${reply.body.slice(0, 200)}`,
      );
      assert.doesNotMatch(reply.body, /kvmf_/, 'no token handed out');
      const entry = await auditOf(who, target);
      assert.ok(entry, `${who} POST ${target} is not in the audit log`);
      assert.equal(entry.result, String(reply.status));
      if (reply.status === 403)
        assert.equal(entry.action, 'POST /api/v1/users', `${target} is audited under the route it matched`);
    }
    assert.equal((await as('admin', 'GET', '/api/v1/users')).body.includes(`eve-${who}`), false, 'no user was created');
  });
}

test('viewer: no spelling of a Kickstart (root password hash) or a mutation gets through; each attempt audited', async () => {
  for (const target of spellings('/api/v1/hosts/h1/kickstart')) {
    const reply = await as('view', 'GET', target);
    assert.ok([400, 403, 404].includes(reply.status), `viewer GET ${target} answered ${reply.status}`);
    if (reply.status === 404) assert.match(reply.body, /KVMF_ERR_NOT_FOUND/);
  }
  for (const target of spellings('/api/v1/sites')) {
    const reply = await as('view', 'POST', target, { name: 'viewer-site' });
    assert.ok([400, 403, 404].includes(reply.status), `viewer POST ${target} answered ${reply.status}`);
    const entry = await auditOf('view', target);
    assert.ok(entry, `viewer POST ${target} is not audited`);
    assert.equal(entry.result, String(reply.status));
  }
  assert.equal((await as('admin', 'GET', '/api/v1/sites')).body.includes('viewer-site'), false);
});

test('an allowed mutation is audited under its route; an unknown route too; anonymous attempts as well', async () => {
  const created = await as('ops', 'POST', 'http://kvmfleet.example/api/v1/%73ites', { name: 'ops-site' });
  assert.equal(created.status, 201);
  const entry = await auditOf('ops', 'http://kvmfleet.example/api/v1/%73ites');
  assert.deepEqual([entry?.action, entry?.result], ['POST /api/v1/sites', '201']);
  const unknown = await as('ops', 'DELETE', '/api/v1/no-such-thing/x');
  assert.equal(unknown.status, 404);
  assert.equal((await auditOf('ops', '/api/v1/no-such-thing/x'))?.action, 'DELETE (no route)');
  const anonymous = await rawRequest(port, {
    method: 'POST',
    target: '/api/v1/%75sers',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"x","role":"admin"}',
  });
  assert.equal(anonymous.status, 401);
  assert.equal((await auditOf('anonymous', '/api/v1/%75sers'))?.action, 'POST /api/v1/users');
});

test('what the router refuses before any route (a URL that does not decode, an over-long name) is audited when it is a mutation', async () => {
  const undecodable = await as('ops', 'POST', '/api/v1/%ZZsers', { name: 'x', role: 'admin' });
  assert.equal(undecodable.status, 400);
  const entry = (await listAudit(store.db, { limit: 10_000 })).find((e) => e.detail.path === '/api/v1/%ZZsers');
  assert.deepEqual(
    [entry?.actor, entry?.action, entry?.result],
    ['unverified token', 'POST (refused by the router)', '400'],
  );
  const long = `/api/v1/hosts/${'h'.repeat(300)}/rebuild`;
  assert.equal((await rawRequest(port, { method: 'POST', target: long })).status, 414);
  const longEntry = (await listAudit(store.db, { limit: 10_000 })).find((e) => e.detail.path === long);
  assert.deepEqual([longEntry?.actor, longEntry?.result], ['anonymous', '414']);
  assert.equal((await as('view', 'GET', '/api/v1/%ZZudit')).status, 400);
  assert.equal(
    (await listAudit(store.db, { limit: 10_000 })).find((e) => e.detail.path === '/api/v1/%ZZudit'),
    undefined,
    'a read is not audited',
  );
});

test('deny by default: an /api route without a declared permission cannot be registered; another one fails start-up', async () => {
  const bare = Fastify();
  requirePermissionDeclarations(bare);
  assert.throws(() => bare.get('/api/v1/forgotten', async () => 'secret'), /declares no permission/);
  assert.throws(() => bare.post('/api/v2/x', { config: {} }, async () => 'secret'), /declares no permission/);
  bare.get('/api/v1/fine', { config: { permission: 'read' } }, async () => 'ok');
  await bare.close();
  const other = Fastify();
  requirePermissionDeclarations(other);
  other.get('/elsewhere', async () => 'secret');
  await assert.rejects(async () => void (await other.ready()), /routes without a permission: GET \/elsewhere/);
});
