/**
 * The BMC routes through Fastify's inject (no socket, no BMC): a password goes in and never comes
 * out — not in answers, not in the audit log, not in the error for a body that does not parse —
 * and the routes are in the OpenAPI document with their error answers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { openStore, type Store } from '../../src/store/open.ts';

const SECRET = 'Pw-in-requests-93'; // 17 bytes: within IPMI v2.0's 20
let store: Store;
let app: FastifyInstance;
const seen: string[] = [];
const call = async (
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: unknown,
  contentType = 'application/json',
) => {
  const r = await app.inject({
    method,
    url,
    ...(payload !== undefined
      ? {
          payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
          headers: { 'content-type': contentType },
        }
      : {}),
  });
  seen.push(r.body);
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined };
};

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  const ring = keyringOf([randomBytes(32)]);
  app = await buildApi({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    bootBaseUrl: 'http://boot.test:8081',
    bmc: { keyring: () => ring },
  });
  await call('POST', '/api/v1/sites', { name: 'dc1' });
  await call('POST', '/api/v1/networks', { name: 'n1', site: 'dc1', cidr: '10.0.0.0/24' });
  await call('POST', '/api/v1/profiles', {
    name: 'rhel9',
    os: 'rhel9',
    installTreeUrl: 'http://mirror.example.com/rhel9/',
  });
  assert.equal(
    (
      await call('POST', '/api/v1/hosts', {
        hostname: 'hv1',
        macs: ['52:54:00:00:00:01'],
        network: 'n1',
        profile: 'rhel9',
      })
    ).status,
    201,
  );
});
after(async () => {
  await app.close();
  await store.close();
});

test('a BMC password goes in and never comes out: answers, host list, audit, parse errors', async () => {
  const put = await call('PUT', '/api/v1/hosts/hv1/bmc', {
    type: 'ipmi',
    address: '10.0.0.9',
    username: 'admin',
    password: SECRET,
  });
  assert.equal(put.status, 200);
  assert.deepEqual(put.body, {
    type: 'ipmi',
    address: '10.0.0.9',
    username: 'admin',
    credentials: null,
    passwordSet: true,
  });
  assert.equal(
    (await call('PUT', '/api/v1/bmc-credentials/rack1', { username: 'ADMIN', password: SECRET })).status,
    200,
  );
  assert.deepEqual((await call('GET', '/api/v1/bmc-credentials')).body, [
    { name: 'rack1', username: 'ADMIN', passwordSet: true, hosts: 0 },
  ]);
  const host = await call('GET', '/api/v1/hosts/hv1');
  assert.deepEqual(host.body.bmc, { type: 'ipmi', address: '10.0.0.9', username: 'admin' });
  await call('GET', '/api/v1/hosts');
  // a body that does not parse, one that breaks the schema, one with an unknown field
  assert.equal(
    (await call('PUT', '/api/v1/hosts/hv1/bmc', `{"type":"ipmi","address":"b","password":"${SECRET}"`)).status,
    400,
  );
  assert.equal(
    (
      await call('PUT', '/api/v1/hosts/hv1/bmc', {
        type: 'ipmi',
        address: 'b',
        password: `${SECRET}${'x'.repeat(200)}`,
      })
    ).status,
    400,
  );
  assert.equal(
    (await call('PUT', '/api/v1/hosts/hv1/bmc', { type: 'ipmi', address: 'b', password: SECRET, extra: SECRET }))
      .status,
    400,
  );
  // IPMI's 20-byte limit is a clear 422
  const long = await call('PUT', '/api/v1/hosts/hv1/bmc', {
    type: 'ipmi',
    address: 'b',
    password: `${SECRET}-longer-than-20`,
  });
  assert.deepEqual([long.status, long.body.error.code], [422, 'KVMF_ERR_VALIDATION']);
  const audit = await sql<{ detail: unknown; action: string }>`select action, detail from audit_log`.execute(store.db);
  assert.ok(audit.rows.some((r) => r.action === 'PUT /api/v1/hosts/:name/bmc'));
  assert.ok(!JSON.stringify(audit.rows).includes(SECRET), 'the audit log carries the password');
  assert.ok(!seen.join('\n').includes(SECRET), 'an answer carries the password');
  const stored = await sql<{ bmc_secret: string }>`select bmc_secret from hosts where hostname = 'hv1'`.execute(
    store.db,
  );
  assert.match(stored.rows[0]!.bmc_secret, /^kvmf1\./);
});

test('power and bootdev: a host without a BMC is KVMF_ERR_NO_BMC, an unreachable redfish BMC KVMF_ERR_BMC_UNREACHABLE, bad actions 400', async () => {
  assert.equal(
    (
      await call('POST', '/api/v1/hosts', {
        hostname: 'hv2',
        macs: ['52:54:00:00:00:02'],
        network: 'n1',
        profile: 'rhel9',
      })
    ).status,
    201,
  );
  const none = await call('POST', '/api/v1/hosts/hv2/power', { action: 'on' });
  assert.deepEqual([none.status, none.body.error.code], [409, 'KVMF_ERR_NO_BMC']);
  // A Redfish BMC on a loopback port that was just ours and is closed now: unreachable, 504.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  await call('PUT', '/api/v1/hosts/hv2/bmc', {
    type: 'redfish',
    address: `127.0.0.1:${closedPort}`,
    username: 'root',
    password: 'x',
  });
  const redfish = await call('GET', '/api/v1/hosts/hv2/power');
  assert.deepEqual([redfish.status, redfish.body.error.code], [504, 'KVMF_ERR_BMC_UNREACHABLE']);
  assert.equal((await call('POST', '/api/v1/hosts/hv2/power', { action: 'explode' })).status, 400);
  assert.equal((await call('POST', '/api/v1/hosts/hv2/bootdev', { device: 'floppy' })).status, 400);
  assert.equal((await call('GET', '/api/v1/hosts/nope/power')).status, 404);
  const failed = await sql<{
    action: string;
    result: string;
  }>`select action, result from audit_log where action like 'bmc %'`.execute(store.db);
  assert.ok(failed.rows.some((r) => r.action === 'bmc power on' && r.result === 'failed'));
});

test('the routes are in the OpenAPI document with summaries and their error answers', async () => {
  const doc = (await call('GET', '/openapi.json')).body as {
    paths: Record<
      string,
      Record<string, { summary?: string; operationId?: string; responses: Record<string, unknown> }>
    >;
  };
  for (const [path, method, codes] of [
    ['/api/v1/hosts/{name}/power', 'post', ['200', '409', '422', '502', '504']],
    ['/api/v1/hosts/{name}/power', 'get', ['200', '504']],
    ['/api/v1/hosts/{name}/bootdev', 'post', ['200', '502', '504']],
    ['/api/v1/hosts/{name}/bmc', 'put', ['200', '422']],
    ['/api/v1/hosts/{name}/rebuild/power-cycle', 'post', ['202', '502', '504']],
    ['/api/v1/bmc-credentials/{name}', 'put', ['200']],
  ] as const) {
    const op = doc.paths[path]?.[method];
    assert.ok(op, `${method} ${path}`);
    assert.ok(op.summary && op.operationId, `${method} ${path} summary and operationId`);
    for (const code of codes) assert.ok(op.responses[code], `${method} ${path} answers ${code}`);
  }
});
