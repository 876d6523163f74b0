/**
 * PowerService speaking Redfish to the Redfish test double (test/bmc/redfish-double.ts) over
 * HTTPS on 127.0.0.1, its certificate signed by a CA made here: every verb and boot setting, the
 * requests the double saw (session opened and deleted, If-Match, nothing outside the schema),
 * refused logins, untrusted certificates, unsupported actions refused before any POST, and an
 * unreachable BMC answered in bounded time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setHostBmc } from '../../src/bmc/credentials.ts';
import { PowerService, type BmcDeps } from '../../src/bmc/power.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createProfile } from '../../src/fleet/profiles.ts';
import { createSite } from '../../src/fleet/sites.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { memoryBackend, startRedfishDouble, type RedfishDouble, type RedfishDoubleOptions } from './redfish-double.ts';
import { makeTestCa, type TestCa } from './tls-certs.ts';

const ring = keyringOf([randomBytes(32)]);
const TIMING = { timeoutMs: 2000, attempts: 2, backoffMs: 50, pollMs: 20, offWithinMs: 5000 };
const code = (c: string) => (e: unknown) => {
  assert.equal((e as { code?: string }).code, c, String(e));
  return true;
};

describe('PowerService over Redfish (test double)', { timeout: 120_000 }, () => {
  let store: Store;
  let ca: TestCa;
  let otherCa: TestCa;
  let server: { cert: string; key: string };
  const doubles: RedfishDouble[] = [];
  let hostCount = 0;

  const power = (deps: Partial<BmcDeps> = {}) =>
    new PowerService(store.db, { keyring: () => ring, redfish: TIMING, ...deps });

  /** A double and a host whose BMC it is (password as given, CA file: the test CA unless told). */
  const machine = async (
    options: Partial<RedfishDoubleOptions> & { state?: 'On' | 'Off' } = {},
    bmc: { password?: string; caFile?: string | null; insecure?: boolean } = {},
  ) => {
    const backend = memoryBackend(options.state ?? 'Off');
    const double = await startRedfishDouble({ ...server, backend, ...options });
    doubles.push(double);
    hostCount += 1;
    const hostname = `rf${hostCount}`;
    await createHost(store.db, {
      hostname,
      macs: [`52:54:00:00:10:${hostCount.toString(16).padStart(2, '0')}`],
      network: 'n1',
      profile: 'p1',
    });
    await setHostBmc(store.db, () => ring, hostname, {
      type: 'redfish',
      address: `${double.host}:${double.port}`,
      username: double.username,
      password: bmc.password ?? double.password,
      ...(bmc.insecure ? { insecure: true } : bmc.caFile === null ? {} : { caFile: bmc.caFile ?? ca.caFile }),
    });
    return { hostname, double, backend };
  };
  const resetPosts = (d: RedfishDouble) => d.requests.filter((r) => r.path.endsWith('/Actions/ComputerSystem.Reset'));
  /** Every conversation logged in once, ended its session, and sent nothing outside the schema. */
  const clean = (d: RedfishDouble) => {
    assert.deepEqual(d.violations(), [], 'requests the double refused');
    assert.equal(d.openSessions(), 0, 'a session was left open');
    const posts = d.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Sessions'));
    const deletes = d.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/Sessions/'));
    assert.equal(deletes.length, posts.length);
    assert.ok(
      d.requests.every((r) => r.auth !== 'basic'),
      'basic auth where a session was offered',
    );
  };

  before(async () => {
    store = await openStore({ dataDir: 'memory://' });
    ca = makeTestCa('kvt redfish test CA');
    otherCa = makeTestCa('some other CA');
    server = ca.serverCert('127.0.0.1');
    await createSite(store.db, { name: 'dc1' });
    await createNetwork(store.db, { name: 'n1', site: 'dc1', cidr: '10.0.0.0/24' });
    await createProfile(store.db, { name: 'p1', os: 'rhel9', installTreeUrl: 'http://mirror.example.com/rhel9/' });
  });
  after(async () => {
    for (const d of doubles) await d.close();
    await store?.close();
    ca?.remove();
    otherCa?.remove();
  });

  test('status, on, off, soft, reset: the ResetTypes the spec maps them to; a session per call, deleted', async () => {
    const { hostname, double, backend } = await machine();
    const svc = power();
    assert.deepEqual(await svc.power(hostname, 'status'), {
      hostname,
      action: 'status',
      powerState: 'off',
      sent: null,
      auth: 'session',
    });
    assert.deepEqual(await svc.power(hostname, 'on'), {
      hostname,
      action: 'on',
      powerState: 'on',
      sent: 'on',
      auth: 'session',
    });
    assert.equal((await svc.power(hostname, 'reset')).powerState, 'on');
    assert.equal((await svc.power(hostname, 'soft')).powerState, 'off');
    await svc.power(hostname, 'on');
    assert.deepEqual(await svc.power(hostname, 'off'), {
      hostname,
      action: 'off',
      powerState: 'off',
      sent: 'off',
      auth: 'session',
    });
    // already off: nothing sent (many services answer ForceOff of an off machine with an error)
    assert.equal((await svc.power(hostname, 'off')).sent, null);
    assert.deepEqual(backend.resets, ['On', 'ForceRestart', 'GracefulShutdown', 'On', 'ForceOff']);
    assert.deepEqual(
      resetPosts(double).map((r) => r.body),
      backend.resets.map((t) => ({ ResetType: t })),
    );
    clean(double);
  });

  test('cycle: an off machine is powered on; PowerCycle where offered; else ForceOff, Off, then On', async () => {
    const plain = await machine({ state: 'Off' });
    const svc = power();
    assert.equal((await svc.power(plain.hostname, 'cycle')).sent, 'on');
    assert.deepEqual(plain.backend.resets, ['On']);
    const r = await svc.power(plain.hostname, 'cycle');
    assert.deepEqual([r.sent, r.powerState], ['cycle', 'on']);
    assert.deepEqual(plain.backend.resets, ['On', 'ForceOff', 'On']);
    clean(plain.double);

    const offered = await machine({ state: 'On', resetTypes: ['On', 'ForceOff', 'PowerCycle'] });
    assert.equal((await svc.power(offered.hostname, 'cycle')).sent, 'cycle');
    assert.deepEqual(offered.backend.resets, ['PowerCycle']);
    clean(offered.double);
  });

  test('bootdev: Pxe/Hdd, Once/Continuous, UEFI/Legacy, PATCHed with If-Match of the ETag just read', async () => {
    const { hostname, double, backend } = await machine();
    const svc = power();
    assert.deepEqual(await svc.bootdev(hostname, { device: 'pxe' }), {
      hostname,
      device: 'pxe',
      persistent: false,
      uefi: false,
      auth: 'session',
    });
    assert.deepEqual(double.boot(), { target: 'Pxe', enabled: 'Once', mode: 'Legacy' });
    await svc.bootdev(hostname, { device: 'disk', persistent: true, uefi: true });
    assert.deepEqual(double.boot(), { target: 'Hdd', enabled: 'Continuous', mode: 'UEFI' });
    assert.equal(backend.boots.length, 2);
    const patches = double.requests.filter((r) => r.method === 'PATCH');
    assert.deepEqual(
      patches.map((p) => p.body),
      [
        {
          Boot: {
            BootSourceOverrideTarget: 'Pxe',
            BootSourceOverrideEnabled: 'Once',
            BootSourceOverrideMode: 'Legacy',
          },
        },
        {
          Boot: {
            BootSourceOverrideTarget: 'Hdd',
            BootSourceOverrideEnabled: 'Continuous',
            BootSourceOverrideMode: 'UEFI',
          },
        },
      ],
    );
    for (const patch of patches) {
      const i = double.requests.indexOf(patch);
      const read = double.requests[i - 1]!;
      assert.deepEqual([read.method, read.path], ['GET', patch.path]);
      assert.match(patch.ifMatch ?? '', /^W\/"\d+"$/);
    }
    assert.notEqual(patches[0]!.ifMatch, patches[1]!.ifMatch, 'the ETag changes with the resource');
    clean(double);
  });

  test('a stale ETag (412) is read again and PATCHed once more; no mode shown: UEFI refused, Legacy left out', async () => {
    const stale = await machine({ staleEtagOnce: true });
    const svc = power();
    await svc.bootdev(stale.hostname, { device: 'pxe' });
    const patches = stale.double.requests.filter((r) => r.method === 'PATCH');
    assert.deepEqual(
      patches.map((p) => p.status),
      [412, 204],
    );
    assert.notEqual(patches[0]!.ifMatch, patches[1]!.ifMatch);
    assert.deepEqual(stale.double.boot().target, 'Pxe');
    assert.deepEqual(
      stale.double.violations().map((v) => v.status),
      [412],
    );

    const noMode = await machine({ bootMode: false });
    await assert.rejects(svc.bootdev(noMode.hostname, { device: 'pxe', uefi: true }), code('KVMF_ERR_BMC_UNSUPPORTED'));
    assert.equal(noMode.double.requests.filter((r) => r.method === 'PATCH').length, 0);
    await svc.bootdev(noMode.hostname, { device: 'pxe' });
    assert.deepEqual(noMode.double.requests.find((r) => r.method === 'PATCH')?.body, {
      Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' },
    });
    const noPxe = await machine({ bootTargets: ['None', 'Hdd'] });
    await assert.rejects(svc.bootdev(noPxe.hostname, { device: 'pxe' }), code('KVMF_ERR_BMC_UNSUPPORTED'));
    assert.equal(noPxe.double.requests.filter((r) => r.method === 'PATCH').length, 0);
    clean(noMode.double);
    clean(noPxe.double);
  });

  test('an action outside ResetType@Redfish.AllowableValues is refused without a POST', async () => {
    const { hostname, double, backend } = await machine({ state: 'On', resetTypes: ['On', 'ForceOff'] });
    const svc = power();
    for (const action of ['soft', 'reset'] as const)
      await assert.rejects(svc.power(hostname, action), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'KVMF_ERR_BMC_UNSUPPORTED');
        assert.match(e.message, /does not offer reset (GracefulShutdown|ForceRestart)/);
        return true;
      });
    const onOnly = await machine({ state: 'On', resetTypes: ['ForceOff'] });
    // a cycle needs ForceOff and On: neither is sent when On is missing
    await assert.rejects(svc.power(onOnly.hostname, 'cycle'), code('KVMF_ERR_BMC_UNSUPPORTED'));
    assert.equal(resetPosts(double).length + resetPosts(onOnly.double).length, 0);
    assert.deepEqual(backend.resets, []);
    assert.deepEqual(onOnly.backend.resets, []);
    clean(double);
    clean(onOnly.double);
  });

  test('a service without sessions is spoken to with HTTP Basic; without AllowableValues any action is tried', async () => {
    const { hostname, double, backend } = await machine({ sessions: false, resetTypes: null });
    const r = await power().power(hostname, 'soft');
    assert.deepEqual([r.auth, r.sent], ['basic', 'soft']);
    await power().power(hostname, 'on');
    assert.equal((await power().power(hostname, 'soft')).sent, 'soft');
    assert.deepEqual(backend.resets, ['GracefulShutdown', 'On', 'GracefulShutdown']);
    assert.ok(double.requests.filter((q) => q.path !== '/redfish/v1/').every((q) => q.auth === 'basic'));
    assert.deepEqual(double.violations(), []);
  });

  test('a wrong password is KVMF_ERR_BMC_AUTH, tried once, and the password is in no message', async () => {
    const wrong = 'Not-the-password-8812';
    const { hostname, double } = await machine({}, { password: wrong });
    await assert.rejects(power().power(hostname, 'on'), (e: Error & { code?: string; details?: unknown }) => {
      assert.equal(e.code, 'KVMF_ERR_BMC_AUTH');
      assert.ok(!e.message.includes(wrong) && !JSON.stringify(e.details ?? null).includes(wrong), e.message);
      assert.ok(!e.message.includes(double.password));
      return true;
    });
    const logins = double.requests.filter((r) => r.method === 'POST');
    assert.equal(logins.length, 1, 'a refused login is not tried again, by session or by Basic');
    assert.equal(resetPosts(double).length, 0);

    const basicOnly = await machine({ sessions: false }, { password: wrong });
    await assert.rejects(power().power(basicOnly.hostname, 'status'), code('KVMF_ERR_BMC_AUTH'));
  });

  test('a password a service echoes in its error is scrubbed', async () => {
    const secret = 'Echoed-secret-4471';
    const echo = createHttpsServer(server, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET') {
          res.end(
            JSON.stringify({
              Systems: { '@odata.id': '/redfish/v1/Systems' },
              Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
            }),
          );
          return;
        }
        const sent = JSON.parse(Buffer.concat(chunks).toString()) as { Password: string };
        res.statusCode = 400;
        res.end(JSON.stringify({ error: { code: 'Oops', message: `bad value ${sent.Password} for Password` } }));
      });
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as { port: number }).port;
    hostCount += 1;
    const hostname = `rf${hostCount}`;
    await createHost(store.db, { hostname, macs: ['52:54:00:00:11:01'], network: 'n1', profile: 'p1' });
    await setHostBmc(store.db, () => ring, hostname, {
      type: 'redfish',
      address: `127.0.0.1:${port}`,
      username: 'root',
      password: secret,
      caFile: ca.caFile,
    });
    try {
      await assert.rejects(power().power(hostname, 'status'), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'KVMF_ERR_BMC_PROTOCOL');
        assert.match(e.message, /bad value \*\*\* for Password/);
        assert.ok(!e.message.includes(secret));
        return true;
      });
    } finally {
      echo.closeAllConnections();
      await new Promise((r) => echo.close(r));
    }
  });

  test('certificates: an unknown CA is KVMF_ERR_BMC_CERTIFICATE; insecure skips the check; the default CA file serves hosts naming none', async () => {
    const untrusted = await machine({}, { caFile: otherCa.caFile });
    await assert.rejects(power().power(untrusted.hostname, 'status'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KVMF_ERR_BMC_CERTIFICATE');
      assert.match(e.message, /not trusted/);
      return true;
    });
    assert.equal(untrusted.double.requests.length, 0, 'nothing was sent to a peer that failed the TLS check');
    // no CA named and none by default: the system store, which does not know the test CA
    const systemStore = await machine({}, { caFile: null });
    await assert.rejects(power().power(systemStore.hostname, 'status'), code('KVMF_ERR_BMC_CERTIFICATE'));
    assert.equal(
      (await power({ redfish: { ...TIMING, caFile: ca.caFile } }).power(systemStore.hostname, 'status')).powerState,
      'off',
    );
    const insecure = await machine({}, { insecure: true });
    assert.equal((await power().power(insecure.hostname, 'on')).powerState, 'on');
    clean(insecure.double);
    const missing = await machine({}, { caFile: '/nonexistent/kvt-ca.pem' });
    await assert.rejects(power().power(missing.hostname, 'status'), code('KVMF_ERR_BMC_CERTIFICATE'));
  });

  test('unreachable: a closed port and a peer that never answers are KVMF_ERR_BMC_UNREACHABLE in bounded time', async () => {
    // A port that was just ours and is closed now.
    const probe = createTcpServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    // A peer that takes the connection and says nothing (no TLS handshake).
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    try {
      for (const [i, port] of [closedPort, silentPort].entries()) {
        const hostname = `rf-dead${i}`;
        await createHost(store.db, { hostname, macs: [`52:54:00:00:12:0${i}`], network: 'n1', profile: 'p1' });
        await setHostBmc(store.db, () => ring, hostname, {
          type: 'redfish',
          address: `127.0.0.1:${port}`,
          username: 'root',
          password: 'x',
          caFile: ca.caFile,
        });
        const started = Date.now();
        await assert.rejects(
          power({ redfish: { timeoutMs: 500, attempts: 3, backoffMs: 50 } }).power(hostname, 'on'),
          code('KVMF_ERR_BMC_UNREACHABLE'),
        );
        // 3 tries of at most 500 ms and 50 + 100 ms of backoff
        assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      }
      assert.equal(sockets.length, 3, 'the silent peer was tried three times (the service root is a GET)');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
