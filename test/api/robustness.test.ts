/**
 * What an OpenAPI fuzzer found, over real HTTP: a NUL (U+0000) anywhere in an input is a 400 with a
 * stable code (never 500), and its call still audited; ids beyond 32 bits are 404; names as long as
 * the schemas allow work on every path that names them; undeclared methods are 405 with Allow; the
 * OpenAPI document is 3.0.3 (no numeric exclusiveMinimum) and declares a bearer scheme and each
 * operation's security.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { createToken, createUser } from '../../src/auth/accounts.ts';
import { listAudit } from '../../src/auth/audit.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { ErrorCode } from '../../src/errors.ts';
import { LibvirtPool } from '../../src/protocols/libvirt/pool.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import { VmService } from '../../src/vms/vm-service.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;
let admin = '';
const pool = new LibvirtPool();

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  const vms = new VmService(store.db, pool);
  app = await buildApi({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    bootBaseUrl: 'http://boot.test:8081',
    vms: { db: store.db, pool, vms, jobs: new JobRunner(store.db, vms, { work: false }) },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  await createUser(store.db, { name: 'admin', role: 'admin' });
  admin = (await createToken(store.db, { user: 'admin', name: 't' })).token;
});
after(async () => {
  await app.close();
  await store.close();
});

const call = async (method: string, target: string, body?: string, type = 'application/json', token = admin) => {
  const reply = await rawRequest(port, {
    method,
    target,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': type } : {}),
    },
    ...(body !== undefined ? { body } : {}),
  });
  return {
    status: reply.status,
    headers: reply.headers,
    body: reply.headers['content-type']?.startsWith('application/json') ? JSON.parse(reply.body) : reply.body,
  };
};

test('a NUL anywhere — JSON body, nested, text body, query, path, login — is 400 KVMF_ERR_NUL_CHARACTER, and audited', async () => {
  const cases: [string, string, string?, string?][] = [
    ['POST', '/api/v1/sites', JSON.stringify({ name: 'a\u0000b' })],
    [
      'POST',
      '/api/v1/profiles',
      JSON.stringify({ name: 'p', os: 'rhel9', installTreeUrl: 'http://m/x', packages: ['tuned', 'x\u0000'] }),
    ],
    ['POST', '/api/v1/import/hosts', 'hostname,mac,ip,network,profile\nh\u0000,52:54:00:00:00:01,,n,p\n', 'text/csv'],
    ['GET', '/api/v1/hosts?q=%00'],
    ['GET', '/api/v1/sites/a%00b'],
    ['DELETE', '/api/v1/hosts/x%00'],
  ];
  for (const [method, target, body, type] of cases) {
    const reply = await call(method, target, body, type);
    assert.equal(reply.status, 400, `${method} ${target}: ${JSON.stringify(reply.body)}`);
    assert.equal(reply.body.error.code, ErrorCode.NulCharacter);
  }
  const login = await call(
    'POST',
    '/api/v1/login',
    JSON.stringify({ name: 'admin\u0000', password: 'x\u0000' }),
    'application/json',
    '',
  );
  assert.equal(login.status, 400);
  assert.equal(login.body.error.code, ErrorCode.NulCharacter);
  const audit = await listAudit(store.db, { limit: 100 });
  assert.ok(
    audit.some((e) => e.action === 'POST /api/v1/sites' && e.result === '400'),
    'the refused call is in the audit log',
  );
  assert.ok(
    audit.some((e) => e.action === 'POST /api/v1/login' && e.result === '400' && e.actor.includes('\\u0000')),
    'with the NUL escaped',
  );
});

test('every operation with a JSON body: a NUL in it is a 400, never a 5xx', async () => {
  const doc = (await call('GET', '/openapi.json')).body as {
    paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>>;
  };
  let tried = 0;
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!operation.requestBody?.content?.['application/json']) continue;
      const target = path.replace(/\{[^}]+\}/g, 'x');
      const reply = await call(
        method.toUpperCase(),
        target,
        JSON.stringify({ name: '\u0000', nested: { list: ['ok', 'n\u0000'] } }),
      );
      assert.equal(reply.status, 400, `${method} ${target}: ${reply.status} ${JSON.stringify(reply.body)}`);
      tried++;
    }
  }
  assert.ok(tried >= 15, `${tried} operations tried`);
});

test('ids beyond 32 bits are outside the documented range: 400 (the largest id: 404), never 500', async () => {
  for (const [id, status] of [
    ['2147483647', 404],
    ['2147483648', 400],
    ['9999999999', 400],
  ] as const) {
    assert.equal((await call('GET', `/api/v1/jobs/${id}`)).status, status, `job ${id}`);
    assert.equal((await call('GET', `/api/v1/jobs/${id}/events`)).status, status, `job ${id} events`);
    assert.equal((await call('DELETE', `/api/v1/tokens/${id}`)).status, status, `token ${id}`);
  }
});

test('a 253-character hostname the schema allows works on every path that names it', async () => {
  const site =
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 10.6.0.0/24 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://mirror/rhel9" }\n';
  assert.equal((await call('POST', '/api/v1/import/site', site, 'application/yaml')).status, 200);
  const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  assert.equal(name.length, 253);
  const created = await call(
    'POST',
    '/api/v1/hosts',
    JSON.stringify({
      hostname: name,
      macs: ['52:54:00:06:00:01'],
      ip: '10.6.0.10',
      network: 'lab-hv',
      profile: 'rhel9',
    }),
  );
  assert.equal(created.status, 201, JSON.stringify(created.body));
  for (const path of [
    `/api/v1/hosts/${name}`,
    `/api/v1/hosts/${name}/timeline`,
    `/api/v1/hosts/${name}/boot-script`,
    `/api/v1/hosts/${name}/kickstart`,
  ]) {
    assert.equal((await call('GET', path)).status, 200, path);
  }
  assert.equal((await call('POST', `/api/v1/hosts/${name}/rebuild`, '{}')).status, 202);
  assert.equal((await call('DELETE', `/api/v1/hosts/${name}`)).status, 204);
  const longer = await call('GET', `/api/v1/hosts/${'x'.repeat(254)}`);
  assert.ok(longer.status === 400 || longer.status === 404, `a name beyond the schema: ${longer.status}`);
  assert.match(JSON.stringify(longer.body), /KVMF_ERR_/, 'in the API’s own error shape');
});

test('undeclared methods on a known path: 405 with Allow; unknown paths stay 404', async () => {
  const put = await call('PUT', '/api/v1/sites', '{}');
  assert.equal(put.status, 405);
  assert.equal(put.body.error.code, ErrorCode.MethodNotAllowed);
  assert.deepEqual(put.headers.allow?.split(', '), ['GET', 'HEAD', 'POST']);
  const patch = await call('PATCH', '/api/v1/hosts/h1', '{}');
  assert.equal(patch.status, 405);
  assert.deepEqual(patch.headers.allow?.split(', '), ['DELETE', 'GET', 'HEAD']);
  assert.equal((await call('DELETE', '/api/v1/build-progress')).headers.allow, 'GET, HEAD');
  assert.equal((await call('PUT', '/api/v1/no-such-thing')).status, 404);
  assert.equal((await call('PUT', '/api/v1/sites', '{}', 'application/json', '')).status, 401, 'authentication first');
});

test('the OpenAPI document: 3.0.3 keywords only, a bearer scheme, security and an id on every operation', async () => {
  const doc = (await call('GET', '/openapi.json')).body as Record<string, any>;
  assert.equal(doc.openapi, '3.0.3');
  assert.deepEqual(doc.components.securitySchemes.bearer, {
    type: 'http',
    scheme: 'bearer',
    description: doc.components.securitySchemes.bearer.description,
  });
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${path}[${i}]`));
    if (!value || typeof value !== 'object') return;
    for (const [key, item] of Object.entries(value)) {
      if ((key === 'exclusiveMinimum' || key === 'exclusiveMaximum') && typeof item !== 'boolean')
        assert.fail(`${path}.${key} is numeric (OpenAPI 3.1, not 3.0.3)`);
      if (key === 'type' && Array.isArray(item)) assert.fail(`${path}.type is a list (3.1)`);
      walk(item, `${path}.${key}`);
    }
  };
  walk(doc, '$');
  const ids = new Set<string>();
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(operations)) {
      assert.ok(Array.isArray(op.security), `${method} ${path} declares its security`);
      assert.ok(op.operationId && !ids.has(op.operationId), `${method} ${path}: a unique operationId`);
      ids.add(op.operationId);
      if (path === '/api/v1/login' || path === '/healthz' || path === '/readyz')
        assert.deepEqual(op.security, [], `${path} is public`);
      else assert.deepEqual(op.security, [{ bearer: [] }], `${method} ${path} needs a token`);
    }
  }
  assert.match(doc.paths['/api/v1/audit'].get.description, /admin permission/);
  assert.match(doc.paths['/api/v1/hosts/{name}/kickstart'].get.description, /write permission/);
});
