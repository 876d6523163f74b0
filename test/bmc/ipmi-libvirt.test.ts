/**
 * ipmi_sim standing for a libvirt guest (TCG, qemu:///system): kvmfleet's IPMI client powers the
 * guest on, off, resets and cycles it, and sets its next boot device (the domain's boot order), and
 * ipmitool asking the same BMC sees what libvirt sees.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { LIBVIRT_CHASSIS_SCRIPT } from './chassis-libvirt.ts';
import { startIpmiSim, type IpmiSim } from './ipmi-sim.ts';

const run = promisify(execFile);
const virsh = async (...args: string[]) => (await run('virsh', ['-q', '-c', 'qemu:///system', ...args])).stdout.trim();
const PROBE = new URL('./ipmi-probe.ts', import.meta.url).pathname;
const DOMAIN = `kvt-bmc-${process.pid}`;

describe('IPMI through ipmi_sim to a libvirt guest', { timeout: 300_000 }, () => {
  let net: NamespacePair;
  let sim: IpmiSim;
  const work = mkdtempSync(join(tmpdir(), 'kvt-ipmi-lv-'));
  const probe = async (ops: unknown[]) => {
    const args = JSON.stringify({ host: sim.host, port: sim.port, username: sim.username, ops });
    const { stdout } = await net.client.exec(
      'env',
      [`KVMT_IPMI_PASSWORD=${sim.password}`, process.execPath, '--import', 'tsx', PROBE, args],
      { timeoutMs: 60_000 },
    );
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { ok: boolean; results: unknown[]; error?: unknown };
    assert.ok(result.ok, JSON.stringify(result));
    return result.results;
  };
  const ipmitool = async (...args: string[]) =>
    (
      await net.client.exec('env', [
        `IPMI_PASSWORD=${sim.password}`,
        'ipmitool',
        '-I',
        'lanplus',
        '-C',
        '3',
        '-E',
        '-H',
        sim.host,
        '-U',
        sim.username,
        ...args,
      ])
    ).stdout.trim();
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
    net = await createNamespacePair('ipmilv');
    sim = await startIpmiSim(net.server, { libvirtDomain: DOMAIN, chassisScript: LIBVIRT_CHASSIS_SCRIPT });
  });
  after(async () => {
    await sim?.stop();
    await net?.cleanup();
    await virsh('destroy', DOMAIN).catch(() => {});
    await virsh('undefine', DOMAIN).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  });

  test('power on, reset, off and cycle drive the guest; status agrees with libvirt and ipmitool', async () => {
    assert.deepEqual(await probe([{ status: true }]), ['off']);
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is off');
    assert.deepEqual(await probe([{ control: 'on' }, { status: true }]), [0, 'on']);
    assert.equal(await virsh('domstate', DOMAIN), 'running');
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is on');
    const id = await virsh('domid', DOMAIN);
    assert.deepEqual(await probe([{ control: 'reset' }]), [0]);
    assert.equal(await virsh('domid', DOMAIN), id, 'a reset keeps the same QEMU process');
    assert.deepEqual(await probe([{ control: 'off' }, { status: true }]), [0, 'off']);
    assert.equal(await virsh('domstate', DOMAIN), 'shut off');
    assert.equal(await ipmitool('power', 'status'), 'Chassis Power is off');
    // a cycle from on: off, then ipmi_sim powers it on again a second later (a new QEMU process)
    await probe([{ control: 'on' }]);
    const before = await virsh('domid', DOMAIN);
    assert.deepEqual(await probe([{ control: 'cycle' }]), [0]);
    await waitFor(
      'the guest running again after the cycle',
      async () => (await virsh('domstate', DOMAIN)) === 'running' && (await virsh('domid', DOMAIN)) !== before,
    );
    await probe([{ control: 'off' }]);
  });

  test("bootdev pxe and disk set the boot order the guest starts with next, as ipmitool's bootdev does", async () => {
    assert.deepEqual(await bootOrder(), ['hd', 'network']);
    await probe([{ boot: { device: 'pxe', persistent: false, uefi: false } }]);
    assert.deepEqual(await bootOrder(), ['network', 'hd']);
    await probe([{ boot: { device: 'disk', persistent: false, uefi: false } }]);
    assert.deepEqual(await bootOrder(), ['hd', 'network']);
    await ipmitool('chassis', 'bootdev', 'pxe');
    assert.deepEqual(await bootOrder(), ['network', 'hd']);
    // the guest starts with it: its live definition puts the network first
    await probe([{ control: 'on' }]);
    assert.match(await virsh('dumpxml', DOMAIN), /<boot dev='network'\/>\s*<boot dev='hd'\/>/);
    await probe([{ control: 'off' }]);
  });
});
