/**
 * The site power routes through Fastify's inject (no BMC is called: the job is only queued, no
 * worker runs here): 202 with the job and its hosts (only those with a BMC, in the states asked),
 * audited; 409 when the site has no such host, 404 for an unknown site, 400 for limits out of range;
 * in the OpenAPI document. And the CLI's parsing of --rate and its summary of a finished job.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { describePowerJob, parseRate } from '../../src/cli/site-power-commands.ts';
import type { LibvirtPool } from '../../src/protocols/libvirt/pool.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import type { Job } from '../../src/vms/job-model.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import type { VmService } from '../../src/vms/vm-service.ts';

let store: Store;
let app: FastifyInstance;
const call = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
  const r = await app.inject({
    method,
    url,
    ...(payload !== undefined
      ? { payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }
      : {}),
  });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined };
};

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  const ring = keyringOf([randomBytes(32)]);
  // Test doubles: no VM route is called here, and the job runner only queues (work: false).
  const vms = {} as VmService;
  app = await buildApi({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    bootBaseUrl: 'http://boot.test:8081',
    bmc: { keyring: () => ring },
    vms: { db: store.db, pool: {} as LibvirtPool, vms, jobs: new JobRunner(store.db, vms, { work: false }) },
  });
  await call('POST', '/api/v1/sites', { name: 'dc1', buildCap: 5 });
  await call('POST', '/api/v1/sites', { name: 'empty' });
  await call('POST', '/api/v1/networks', { name: 'n1', site: 'dc1', cidr: '10.0.0.0/24' });
  await call('POST', '/api/v1/profiles', {
    name: 'rhel9',
    os: 'rhel9',
    installTreeUrl: 'http://mirror.example.com/rhel9/',
  });
  for (const [i, hostname] of ['hv1', 'hv2', 'hv3'].entries()) {
    const made = await call('POST', '/api/v1/hosts', {
      hostname,
      macs: [`52:54:00:00:00:0${i + 1}`],
      network: 'n1',
      profile: 'rhel9',
    });
    assert.equal(made.status, 201);
    if (hostname !== 'hv3')
      // hv3 has no BMC
      assert.equal(
        (
          await call('PUT', `/api/v1/hosts/${hostname}/bmc`, {
            type: 'ipmi',
            address: `10.0.9.${i + 1}`,
            username: 'admin',
            password: 'Pw-api-1',
          })
        ).status,
        200,
      );
  }
  await store.db.updateTable('hosts').set({ build_state: 'built' }).where('hostname', '=', 'hv2').execute();
});
after(async () => {
  await app.close();
  await store.close();
});

test('power-on: 202 with a queued job of the ready hosts with a BMC, audited with its limits', async () => {
  const r = await call('POST', '/api/v1/sites/dc1/power-on', { ratePerMinute: 120, maxParallel: 4 });
  assert.equal(r.status, 202);
  assert.equal(r.body.kind, 'site-power-on');
  assert.equal(r.body.state, 'queued');
  assert.equal(r.body.total, 1, 'hv1 only: hv2 is built, hv3 has no BMC');
  assert.match(r.body.warning, /no worker node is alive/);
  const params = await store.db
    .selectFrom('jobs')
    .select('params')
    .where('id', '=', r.body.id)
    .executeTakeFirstOrThrow();
  assert.deepEqual((params.params as { hosts: string[] }).hosts, ['hv1']);
  const audit = await store.db
    .selectFrom('audit_log')
    .select(['action', 'target', 'result', 'detail'])
    .where('action', '=', 'site power-on')
    .execute();
  assert.equal(audit.length, 1);
  assert.equal(audit[0]!.target, 'dc1');
  assert.equal(audit[0]!.result, 'queued');
  assert.deepEqual(audit[0]!.detail, { job: r.body.id, hosts: 1, ratePerMinute: 120, maxParallel: 4 });
});

test('power-off: every state by default; --state narrows', async () => {
  const all = await call('POST', '/api/v1/sites/dc1/power-off', { softTimeoutS: 30 });
  assert.equal(all.status, 202);
  assert.equal(all.body.total, 2);
  const built = await call('POST', '/api/v1/sites/dc1/power-off', { states: ['built'] });
  assert.equal(built.body.total, 1);
});

test('refusals: no host with a BMC 409, unknown site 404, limits out of range or unknown fields 400, all audited', async () => {
  const none = await call('POST', '/api/v1/sites/empty/power-on', {});
  assert.equal(none.status, 409);
  assert.equal(none.body.error.code, 'KVMF_ERR_NO_BMC');
  assert.equal((await call('POST', '/api/v1/sites/dc1/power-on', { states: ['failed'] })).status, 409);
  const unknown = await call('POST', '/api/v1/sites/nowhere/power-on', {});
  assert.equal(unknown.status, 404);
  for (const body of [
    { ratePerMinute: 0 },
    { ratePerMinute: 60_001 },
    { maxParallel: 257 },
    { softTimeoutS: 5 },
    { states: ['on'] },
  ])
    assert.equal((await call('POST', '/api/v1/sites/dc1/power-on', body)).status, 400, JSON.stringify(body));
  const failed = await store.db
    .selectFrom('audit_log')
    .select('result')
    .where('action', 'like', 'site power-%')
    .where('result', '=', 'failed')
    .execute();
  assert.ok(failed.length >= 3);
});

test('the routes are in the OpenAPI document', async () => {
  const doc = (await call('GET', '/openapi.json')).body;
  for (const action of ['on', 'off']) {
    const op = doc.paths[`/api/v1/sites/{name}/power-${action}`]?.post;
    assert.ok(op, action);
    assert.ok(op.responses['202'] && op.responses['409'] && op.responses['404']);
    assert.equal(op['x-permission'], 'write');
  }
});

test('CLI: --rate as N/min, N or N/s; a finished job summed up with its failures', () => {
  assert.equal(parseRate('120/min'), 120);
  assert.equal(parseRate('90'), 90);
  assert.equal(parseRate('2/s'), 120);
  assert.throws(() => parseRate('fast'), /N\/min/);
  assert.throws(() => parseRate('-1/min'), /N\/min/);
  const job = {
    id: 7,
    kind: 'site-power-on',
    state: 'partial',
    total: 2,
    done: 2,
    failed: 1,
    results: [
      { name: 'hv1', hypervisor: '10.0.9.1', ok: true, detail: 'on', ms: 40 },
      {
        name: 'hv2',
        hypervisor: '10.0.9.2',
        ok: false,
        code: 'KVMF_ERR_BMC_UNREACHABLE',
        error: 'host hv2: no answer',
        ms: 7000,
      },
    ],
    createdAt: '',
    finishedAt: '',
  } satisfies Job;
  assert.equal(
    describePowerJob(job),
    'job 7 (site-power-on): partial, 1 ok, 1 failed of 2\n  hv2 (10.0.9.2): KVMF_ERR_BMC_UNREACHABLE host hv2: no answer',
  );
});
