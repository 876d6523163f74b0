/**
 * A real TCG guest on qemu:///system through the RPC client: every transition — define, start,
 * ACPI shutdown request, destroy, undefine — is seen as a lifecycle event.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { LibvirtClient, type LifecycleEvent } from '../../../src/protocols/libvirt/remote.ts';
import type { RemoteDomain } from '../../../src/protocols/libvirt/types.ts';
import { preferredDomainType, type DomainType } from '../../../src/vms/domain-type.ts';
import { ensureLibvirtd, LIBVIRT_SOCKET } from '../../helpers/libvirtd.ts';

const run = promisify(execFile);
let daemon: { stop(): Promise<void> };
let client: LibvirtClient;
const name = `kvt-tcg-${randomUUID().slice(0, 8)}`;
const uuid = randomUUID();
const xml = (type: DomainType) =>
  `<domain type='${type}'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features><devices><serial type='null'/></devices></domain>`;

before(async () => {
  daemon = await ensureLibvirtd();
  client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, 'qemu:///system');
});
after(async () => {
  await client?.close();
  await daemon?.stop();
});

test(
  'a TCG guest: define, start, shutdown request, destroy, undefine — with a lifecycle event for each',
  { timeout: 300_000 },
  async () => {
    const events: LifecycleEvent[] = [];
    const stop = await client.onLifecycle((e) => e.domain.name === name && events.push(e));
    // This machine lists kvm in its capabilities, but qemu cannot open /dev/kvm (and libvirtd blocks
    // for most of a minute after a failed KVM start), so the test runs TCG as the brief says.
    assert.ok(preferredDomainType(await client.getCapabilities()), 'the host runs x86_64 guests');
    const type: DomainType = 'qemu';
    let dom: RemoteDomain = await client.defineDomainXml(xml(type));
    await client.startDomain(dom);
    dom = await client.lookupDomainByName(name);
    assert.equal((await client.getDomainState(dom)).state, 'running');
    assert.match(await client.getDomainXml(dom), new RegExp(`<domain type='${type}' id='${dom.id}'>`));
    assert.match((await run('virsh', ['-c', 'qemu:///system', 'list', '--name'])).stdout, new RegExp(name));

    await client.shutdownDomain(dom); // ACPI: a guest with no OS ignores it, so it stays up
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await client.getDomainState(dom)).state, 'running');
    await client.destroyDomain(dom);
    assert.equal((await client.getDomainState(dom)).state, 'shutoff');
    await client.undefineDomain(dom);
    await new Promise((r) => setTimeout(r, 300));
    await stop();

    // libvirt 9 also reports "resumed" (QEMU starts paused, then runs) and "shutdown" (finished)
    // around the transitions; each transition must be there, in order.
    const seen = events.map((e) => e.event);
    let at = 0;
    for (const event of seen) if (event === ['defined', 'started', 'stopped', 'undefined'][at]) at++;
    assert.equal(at, 4, `defined → started → stopped → undefined in order: ${seen.join(' ')}`);
    assert.equal(events.find((e) => e.event === 'stopped')!.detail, 1, 'VIR_DOMAIN_EVENT_STOPPED_DESTROYED');
    console.log(`# guest ran as <domain type='${type}'>`);
  },
);
