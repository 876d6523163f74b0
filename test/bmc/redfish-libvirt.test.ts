/**
 * The Redfish test double standing for a libvirt guest (TCG, qemu:///system), as ipmi_sim does in
 * ipmi-libvirt.test.ts: kvmfleet's PowerService powers the guest on, resets, cycles and powers it
 * off over Redfish, and sets its next boot device (the domain's boot order); libvirt is asked
 * what happened, and the double saw nothing outside the schema.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { setHostBmc } from '../../src/bmc/credentials.ts';
import { PowerService } from '../../src/bmc/power.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createProfile } from '../../src/fleet/profiles.ts';
import { createSite } from '../../src/fleet/sites.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { libvirtBackend, startRedfishDouble, type RedfishDouble } from './redfish-double.ts';
import { makeTestCa, type TestCa } from './tls-certs.ts';

const run = promisify(execFile);
const virsh = async (...args: string[]) => (await run('virsh', ['-q', '-c', 'qemu:///system', ...args])).stdout.trim();
const DOMAIN = `kvt-rf-${process.pid}`;

describe('Redfish through the test double to a libvirt guest', { timeout: 300_000 }, () => {
  let store: Store;
  let ca: TestCa;
  let double: RedfishDouble;
  let backend: ReturnType<typeof libvirtBackend>;
  let power: PowerService;
  const work = mkdtempSync(join(tmpdir(), 'kvt-rf-lv-test-'));
  const bootOrder = async () =>
    [...(await virsh('dumpxml', '--inactive', DOMAIN)).matchAll(/<boot dev='(\w+)'\/>/g)].map((m) => m[1]);
  const waitFor = async (what: string, check: () => Promise<boolean>, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    // The smallest guest that runs: no disk, no NIC; SeaBIOS finds nothing to boot and waits. TCG.
    const xml = join(work, 'domain.xml');
    writeFileSync(
      xml,
      `<domain type='qemu'><name>${DOMAIN}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/><boot dev='network'/></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`,
    );
    await virsh('define', xml);
    store = await openStore({ dataDir: 'memory://' });
    ca = makeTestCa('kvt redfish libvirt CA');
    backend = libvirtBackend(DOMAIN);
    // PowerCycle offered, so `cycle` is one Reset, as on most BMCs
    double = await startRedfishDouble({
      ...ca.serverCert('127.0.0.1'),
      backend,
      resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle'],
    });
    const ring = keyringOf([randomBytes(32)]);
    await createSite(store.db, { name: 'dc1' });
    await createNetwork(store.db, { name: 'n1', site: 'dc1', cidr: '10.0.0.0/24' });
    await createProfile(store.db, { name: 'p1', os: 'rhel9', installTreeUrl: 'http://mirror.example.com/rhel9/' });
    await createHost(store.db, { hostname: 'hv1', macs: ['52:54:00:00:30:01'], network: 'n1', profile: 'p1' });
    await setHostBmc(store.db, () => ring, 'hv1', {
      type: 'redfish',
      address: `${double.host}:${double.port}`,
      username: double.username,
      password: double.password,
      caFile: ca.caFile,
    });
    power = new PowerService(store.db, { keyring: () => ring, redfish: { timeoutMs: 20_000, attempts: 2 } });
  });
  after(async () => {
    await double?.close();
    await store?.close();
    await virsh('destroy', DOMAIN).catch(() => {});
    await virsh('undefine', DOMAIN).catch(() => {});
    backend?.remove();
    ca?.remove();
    rmSync(work, { recursive: true, force: true });
  });

  test('on, reset, cycle and off drive the guest; status agrees with libvirt', async () => {
    assert.equal((await power.power('hv1', 'status')).powerState, 'off');
    assert.deepEqual([(await power.power('hv1', 'on')).powerState, await virsh('domstate', DOMAIN)], ['on', 'running']);
    const id = await virsh('domid', DOMAIN);
    assert.equal((await power.power('hv1', 'reset')).sent, 'reset');
    assert.equal(await virsh('domid', DOMAIN), id, 'a reset keeps the same QEMU process');
    assert.equal((await power.power('hv1', 'cycle')).sent, 'cycle');
    await waitFor(
      'the guest running again after the cycle, in a new QEMU process',
      async () => (await virsh('domstate', DOMAIN)) === 'running' && (await virsh('domid', DOMAIN)) !== id,
    );
    assert.deepEqual(
      [(await power.power('hv1', 'off')).powerState, await virsh('domstate', DOMAIN)],
      ['off', 'shut off'],
    );
    // a cycle of a machine that is off powers it on
    assert.equal((await power.power('hv1', 'cycle')).sent, 'on');
    assert.equal(await virsh('domstate', DOMAIN), 'running');
    await power.power('hv1', 'off');
    assert.deepEqual(double.violations(), []);
    assert.equal(double.openSessions(), 0);
  });

  test('bootdev pxe and disk set the boot order the guest starts with next', async () => {
    assert.deepEqual(await bootOrder(), ['hd', 'network']);
    await power.bootdev('hv1', { device: 'pxe' });
    assert.deepEqual(await bootOrder(), ['network', 'hd']);
    await power.bootdev('hv1', { device: 'disk', persistent: true });
    assert.deepEqual(await bootOrder(), ['hd', 'network']);
    await power.bootdev('hv1', { device: 'pxe' });
    await power.power('hv1', 'on');
    assert.match(await virsh('dumpxml', DOMAIN), /<boot dev='network'\/>\s*<boot dev='hd'\/>/);
    await power.power('hv1', 'off');
    assert.deepEqual(double.violations(), []);
  });
});
