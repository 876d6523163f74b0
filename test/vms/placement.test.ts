/** Placement and cloud-init seeds: pure functions, every rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seedFiles } from '../../src/vms/cloud-init.ts';
import { placeVm, planPlacements, type HostCapacity } from '../../src/vms/placement.ts';

const host = (name: string, over: Partial<HostCapacity> = {}): HostCapacity => ({
  name,
  up: true,
  cpus: 8,
  memoryMiB: 65536,
  usedMemoryMiB: 0,
  usedVcpus: 0,
  groups: [],
  ...over,
});
const policy = { cpuOvercommit: 2, reserveMiB: 2048 };

test('the most free memory wins; down, full and overcommitted hypervisors are refused with reasons', () => {
  assert.deepEqual(
    placeVm(
      { memoryMiB: 4096, vcpus: 2 },
      [host('a', { usedMemoryMiB: 8192 }), host('b', { usedMemoryMiB: 1024 })],
      policy,
    ),
    { ok: true, hypervisor: 'b' },
  );
  const refused = placeVm(
    { memoryMiB: 4096, vcpus: 4 },
    [host('down', { up: false }), host('full', { usedMemoryMiB: 60000 }), host('busy', { usedVcpus: 14 })],
    policy,
  );
  assert.equal(refused.ok, false);
  assert.deepEqual(!refused.ok && refused.reasons, [
    'down: not up',
    'full: 3488 MiB free, 4096 MiB needed',
    'busy: 14 of 16 vCPUs allocated, 4 more needed',
  ]);
  assert.deepEqual(placeVm({ memoryMiB: 1, vcpus: 1 }, [], policy), {
    ok: false,
    reasons: ['no hypervisors in the site'],
  });
  // Ties: fewer vCPUs per CPU, then the name.
  assert.deepEqual(
    placeVm(
      { memoryMiB: 1024, vcpus: 1 },
      [host('b', { usedVcpus: 4 }), host('c'), host('a', { usedVcpus: 4 })],
      policy,
    ),
    { ok: true, hypervisor: 'c' },
  );
  assert.deepEqual(placeVm({ memoryMiB: 1024, vcpus: 1 }, [host('b'), host('a')], policy), {
    ok: true,
    hypervisor: 'a',
  });
});

test('anti-affinity: never two VMs of a group on one hypervisor', () => {
  const hosts = [host('a'), host('b'), host('c', { groups: ['db'] })];
  const plan = planPlacements(
    [1, 2, 3].map(() => ({ memoryMiB: 1024, vcpus: 1, antiAffinity: 'db' })),
    hosts,
    policy,
  );
  assert.deepEqual(
    plan.map((p) => (p.ok ? p.hypervisor : 'refused')),
    ['a', 'b', 'refused'],
  );
  assert.match(!plan[2]!.ok ? plan[2]!.reasons.join(' ') : '', /already runs a VM of anti-affinity group "db"/);
});

test('a bulk plan counts what it placed: VMs spread by free memory until the hypervisors are full', () => {
  // 63 488 MiB each after the reserve: a takes 7 of 8 GiB, b (8 GiB used already) 6; then nothing fits.
  const plan = planPlacements(
    Array.from({ length: 15 }, () => ({ memoryMiB: 8192, vcpus: 2 })),
    [host('a'), host('b', { usedMemoryMiB: 8192 })],
    policy,
  );
  const placed = plan.map((p) => (p.ok ? p.hypervisor : '-'));
  assert.deepEqual(
    placed,
    ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', '-', '-'],
    placed.join(','),
  );
  const limited = planPlacements(
    [1, 2, 3].map(() => ({ memoryMiB: 1024, vcpus: 1 })),
    [host('a', { maxNew: 1 }), host('b', { usedMemoryMiB: 30000 })],
    policy,
  );
  assert.deepEqual(
    limited.map((p) => (p.ok ? p.hypervisor : '-')),
    ['a', 'b', 'b'],
  );
});

test('cloud-init NoCloud seed: meta-data, user-data, network-config (static or DHCP), quoted', () => {
  const files = seedFiles({
    instanceId: 'i-1',
    hostname: 'web01',
    domain: 'dc1.example.com',
    sshKeys: ['ssh-ed25519 AAAA user@host'],
    network: {
      mac: '52:54:00:aa:bb:cc',
      address: { ip: '10.1.0.20', prefix: 22, gateway: '10.1.0.1', dns: ['10.1.0.10'] },
    },
  });
  assert.equal(files['meta-data'], 'instance-id: "i-1"\nlocal-hostname: "web01"\n');
  assert.match(files['user-data'], /^#cloud-config\nhostname: "web01"\nfqdn: "web01.dc1.example.com"\n/);
  assert.match(files['user-data'], /ssh_authorized_keys:\n {2}- "ssh-ed25519 AAAA user@host"\n/);
  assert.match(
    files['network-config']!,
    /macaddress: "52:54:00:aa:bb:cc"\n {4}dhcp4: false\n {4}addresses: \["10\.1\.0\.20\/22"\]\n {4}routes: \[\{ to: "0\.0\.0\.0\/0", via: "10\.1\.0\.1" \}\]\n {4}nameservers: \{ addresses: \["10\.1\.0\.10"\] \}/,
  );
  assert.match(
    seedFiles({ instanceId: 'i', hostname: 'a', network: { mac: '52:54:00:00:00:01' } })['network-config']!,
    /dhcp4: true/,
  );
  assert.equal(seedFiles({ instanceId: 'i', hostname: 'a' })['network-config'], undefined);
  assert.throws(() => seedFiles({ instanceId: 'i', hostname: 'bad name\ninjected: yes' }), /not a valid host name/);
  assert.match(
    seedFiles({ instanceId: 'x"\ny: 1', hostname: 'a' })['meta-data'],
    /^instance-id: "x\\"\\ny: 1"\n/,
    'values cannot break out of their YAML scalar',
  );
});
