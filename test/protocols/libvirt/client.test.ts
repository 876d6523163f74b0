/** The pure-TypeScript libvirt client against a real libvirtd, on its test driver (test:///default). */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { LibvirtError } from '../../../src/protocols/libvirt/connection.ts';
import { ListDomainsFlags } from '../../../src/protocols/libvirt/remote.ts';
import { uuidToString } from '../../../src/protocols/libvirt/types.ts';
import { useLibvirtClient, virshTest } from '../../helpers/libvirtd.ts';

const virsh = virshTest;

const libvirt = useLibvirtClient('test:///default');
const name = `kvt-${randomUUID().slice(0, 8)}`;
const uuid = randomUUID();
const xml = `<domain type='test'><name>${name}</name><uuid>${uuid}</uuid><memory unit='KiB'>262144</memory><vcpu>2</vcpu><os><type arch='x86_64'>hvm</type></os></domain>`;

test('connection facts: type, versions, hostname, node info, capabilities', async () => {
  const client = libvirt();
  assert.equal(await client.getType(), 'TEST');
  assert.ok((await client.getLibVersion()) >= 9_000_000n);
  assert.ok((await client.getVersion()) > 0n);
  assert.ok((await client.getHostname()).length > 0);
  const node = await client.nodeGetInfo();
  assert.equal(node.model, 'i686'); // the test driver's fixed node
  assert.equal(node.cpus, 16);
  assert.match(await client.getCapabilities(), /<capabilities>[\s\S]*<guest>/);
});

test('define, start, state, autostart, shutdown, destroy, undefine — and virsh sees the same', async () => {
  const client = libvirt();
  const events: string[] = [];
  const stopEvents = await client.onLifecycle((e) => {
    if (e.domain.name === name) events.push(`${e.event}:${e.detail}`);
  });
  const dom = await client.defineDomainXml(xml);
  assert.equal(dom.name, name);
  assert.equal(uuidToString(dom.uuid), uuid);
  assert.deepEqual((await client.getDomainState(dom)).state, 'shutoff');
  const dumped = await virsh('dumpxml', name);
  assert.equal(dumped.trim(), (await client.getDomainXml(dom)).trim(), 'virsh dumpxml equals our getXMLDesc');
  assert.match(dumped, new RegExp(`<uuid>${uuid}</uuid>`));

  await client.startDomain(dom);
  const running = await client.lookupDomainByName(name);
  assert.ok(running.id > 0);
  assert.equal((await client.getDomainState(running)).state, 'running');
  assert.match(await virsh('domstate', name), /running/);
  const info = await client.getDomainInfo(running);
  assert.equal(info.vcpus, 2);
  assert.equal(info.maxMemKiB, 262144n);

  await client.setDomainAutostart(running, true);
  assert.equal(await client.getDomainAutostart(running), true);

  await client.shutdownDomain(running);
  assert.equal((await client.getDomainState(running)).state, 'shutoff', 'the test driver shuts down at once');
  await client.startDomain(running);
  await client.destroyDomain(running);
  assert.match(await virsh('domstate', name), /shut off/);

  const all = await client.listAllDomains();
  assert.ok(all.some((d) => d.name === name));
  assert.ok((await client.listAllDomains(ListDomainsFlags.Inactive)).some((d) => d.name === name));
  assert.ok(!(await client.listAllDomains(ListDomainsFlags.Active)).some((d) => d.name === name));
  assert.equal((await client.lookupDomainByUuid(dom.uuid)).name, name);

  await client.undefineDomain(dom);
  await assert.rejects(
    client.lookupDomainByName(name),
    (error: LibvirtError) =>
      error instanceof LibvirtError && error.code === 42 /* VIR_ERR_NO_DOMAIN */ && /not found/i.test(error.message),
  );
  assert.doesNotMatch(await virsh('list', '--all', '--name'), new RegExp(name));
  await new Promise((r) => setTimeout(r, 200));
  await stopEvents();
  // One lifecycle event per transition, in order: defined, started, stopped (shutdown), started, stopped (destroyed), undefined.
  assert.deepEqual(
    events.map((e) => e.split(':')[0]),
    ['defined', 'started', 'stopped', 'started', 'stopped', 'undefined'],
    events.join(' '),
  );
  assert.equal(events[4], 'stopped:1', 'VIR_DOMAIN_EVENT_STOPPED_DESTROYED');
});

test('errors come back typed and the connection stays usable', async () => {
  const client = libvirt();
  await assert.rejects(client.defineDomainXml('<domain>'), LibvirtError);
  assert.equal(await client.getType(), 'TEST');
});

test('bench-sized: 1 000 lookup + getState calls go through one connection', async () => {
  const client = libvirt();
  const started = performance.now();
  const [test1] = await client.listAllDomains(ListDomainsFlags.Active);
  for (let i = 0; i < 1000; i++) await client.getDomainState(await client.lookupDomainByName(test1!.name));
  console.log(`# 1 000 lookup+getState pairs in ${(performance.now() - started).toFixed(0)} ms`);
});
