/**
 * The power routes with a Redfish BMC (the Redfish test double on 127.0.0.1), through Fastify's
 * inject: BMC settings with a CA file or insecure, every power action, bootdev, rebuild with a
 * power cycle, the answers' shape, error codes and HTTP statuses, and audit rows without the password.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { memoryBackend, startRedfishDouble, type MemoryBackend, type RedfishDouble } from './redfish-double.ts';
import { makeTestCa, type TestCa } from './tls-certs.ts';

describe('power routes with a Redfish BMC (test double)', { timeout: 120_000 }, () => {
  let store: Store;
  let app: FastifyInstance;
  let ca: TestCa;
  let double: RedfishDouble;
  let backend: MemoryBackend;
  const seen: string[] = [];
  const call = async (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown) => {
    const r = await app.inject({
      method,
      url,
      ...(payload !== undefined
        ? { payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }
        : {}),
    });
    seen.push(r.body);
    return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined };
  };

  before(async () => {
    store = await openStore({ dataDir: 'memory://' });
    ca = makeTestCa('kvt redfish api CA');
    backend = memoryBackend('Off');
    double = await startRedfishDouble({ ...ca.serverCert('127.0.0.1'), backend });
    const ring = keyringOf([randomBytes(32)]);
    app = await buildApi({
      store,
      boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
      bootBaseUrl: 'http://boot.test:8081',
      bmc: { keyring: () => ring, redfish: { timeoutMs: 2000, attempts: 2, backoffMs: 50, pollMs: 20 } },
    });
    await call('POST', '/api/v1/sites', { name: 'dc1' });
    await call('POST', '/api/v1/networks', { name: 'n1', site: 'dc1', cidr: '10.0.0.0/24' });
    await call('POST', '/api/v1/profiles', {
      name: 'rhel9',
      os: 'rhel9',
      installTreeUrl: 'http://mirror.example.com/rhel9/',
    });
    for (const [hostname, mac] of [
      ['hv1', '52:54:00:00:20:01'],
      ['hv2', '52:54:00:00:20:02'],
    ])
      assert.equal(
        (await call('POST', '/api/v1/hosts', { hostname, macs: [mac], network: 'n1', profile: 'rhel9' })).status,
        201,
      );
  });
  after(async () => {
    await app?.close();
    await double?.close();
    await store?.close();
    ca?.remove();
  });

  test('BMC settings: a CA file or insecure, shown when set; IPMI takes neither', async () => {
    const put = await call('PUT', '/api/v1/hosts/hv1/bmc', {
      type: 'redfish',
      address: `${double.host}:${double.port}`,
      username: double.username,
      password: double.password,
      caFile: ca.caFile,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body, {
      type: 'redfish',
      address: `${double.host}:${double.port}`,
      username: double.username,
      credentials: null,
      passwordSet: true,
      caFile: ca.caFile,
    });
    const insecure = await call('PUT', '/api/v1/hosts/hv2/bmc', {
      type: 'redfish',
      address: `${double.host}:${double.port}`,
      username: double.username,
      password: 'a-wrong-one-3390',
      insecure: true,
    });
    assert.equal(insecure.body.insecure, true);
    assert.equal(insecure.body.caFile, undefined);
    const relative = await call('PUT', '/api/v1/hosts/hv2/bmc', {
      type: 'redfish',
      address: '127.0.0.1',
      caFile: 'ca.pem',
    });
    assert.equal(relative.status, 400);
    const ipmi = await call('PUT', '/api/v1/hosts/hv2/bmc', { type: 'ipmi', address: '10.0.0.9', insecure: true });
    assert.deepEqual([ipmi.status, ipmi.body.error.code], [422, 'KVMF_ERR_VALIDATION']);
    // unchanged by the refused calls
    assert.equal((await call('GET', '/api/v1/hosts/hv2/bmc')).body.insecure, true);
  });

  test('power: every action answers like IPMI does, with auth instead of cipherSuite; audited', async () => {
    const status = await call('GET', '/api/v1/hosts/hv1/power');
    assert.deepEqual(
      [status.status, status.body],
      [200, { hostname: 'hv1', action: 'status', powerState: 'off', sent: null, auth: 'session' }],
    );
    const expected: [string, string, string | null][] = [
      ['on', 'on', 'on'],
      ['reset', 'on', 'reset'],
      ['soft', 'off', 'soft'],
      ['cycle', 'on', 'on'],
      ['cycle', 'on', 'cycle'],
      ['off', 'off', 'off'],
    ];
    for (const [action, powerState, sent] of expected) {
      const r = await call('POST', '/api/v1/hosts/hv1/power', { action });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body, { hostname: 'hv1', action, powerState, sent, auth: 'session' }, action);
    }
    assert.deepEqual(backend.resets, ['On', 'ForceRestart', 'GracefulShutdown', 'On', 'ForceOff', 'On', 'ForceOff']);
    const audit = await sql<{
      action: string;
      result: string;
      detail: unknown;
    }>`select action, result, detail from audit_log where action like 'bmc power %' order by id`.execute(store.db);
    assert.deepEqual(
      audit.rows.map((r) => [r.action, r.result, r.detail]),
      expected.map(([action, powerState, sent]) => [`bmc power ${action}`, powerState, { sent, auth: 'session' }]),
    );
  });

  test('bootdev and rebuild --power-cycle: next boot Pxe once, then the machine is powered on', async () => {
    const boot = await call('POST', '/api/v1/hosts/hv1/bootdev', { device: 'disk', persistent: true, uefi: true });
    assert.deepEqual(
      [boot.status, boot.body],
      [200, { hostname: 'hv1', device: 'disk', persistent: true, uefi: true, auth: 'session' }],
    );
    assert.deepEqual(double.boot(), { target: 'Hdd', enabled: 'Continuous', mode: 'UEFI' });
    const mark = backend.resets.length;
    const rebuild = await call('POST', '/api/v1/hosts/hv1/rebuild/power-cycle', { uefi: true });
    assert.equal(rebuild.status, 202, JSON.stringify(rebuild.body));
    assert.deepEqual(
      [rebuild.body.buildState, rebuild.body.power.sent, rebuild.body.power.powerState],
      ['ready', 'on', 'on'],
    );
    assert.deepEqual(double.boot(), { target: 'Pxe', enabled: 'Once', mode: 'UEFI' });
    assert.deepEqual(backend.resets.slice(mark), ['On']);
    assert.deepEqual(double.violations(), []);
    assert.equal(double.openSessions(), 0);
  });

  test('errors: a wrong password is 502 KVMF_ERR_BMC_AUTH and no rebuild; the password is in no answer or audit row', async () => {
    const refused = await call('POST', '/api/v1/hosts/hv2/power', { action: 'on' });
    assert.deepEqual([refused.status, refused.body.error.code], [502, 'KVMF_ERR_BMC_AUTH']);
    const rebuild = await call('POST', '/api/v1/hosts/hv2/rebuild/power-cycle', {});
    assert.deepEqual([rebuild.status, rebuild.body.error.code], [502, 'KVMF_ERR_BMC_AUTH']);
    const rebuilds = await sql<{
      n: string;
    }>`select count(*) as n from host_events e join hosts h on h.id = e.host_id where h.hostname = 'hv2' and e.kind = 'rebuild-requested'`.execute(
      store.db,
    );
    assert.equal(Number(rebuilds.rows[0]!.n), 0, 'a rebuild was requested although the BMC refused the login');
    const audit = await sql<{ detail: unknown }>`select detail from audit_log`.execute(store.db);
    for (const secret of [double.password, 'a-wrong-one-3390']) {
      assert.ok(!seen.join('\n').includes(secret), 'an answer carries a password');
      assert.ok(!JSON.stringify(audit.rows).includes(secret), 'the audit log carries a password');
    }
  });
});
