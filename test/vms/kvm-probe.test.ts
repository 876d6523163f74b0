/**
 * The KVM probe: its decision from every kind of observation (pure), its boot sector against the
 * assembly source, and the probe guest on the real libvirtd — under TCG it must always finish (so
 * a "no marker" under KVM means KVM, not the probe), and whatever the probe says of KVM on this
 * machine must agree with a KVM guest's real behaviour.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { LibvirtClient } from '../../src/protocols/libvirt/remote.ts';
import { domainTypesFor } from '../../src/vms/domain-type.ts';
import { probeDomainType } from '../../src/vms/hypervisors.ts';
import {
  decideDomainType,
  observeKvm,
  PROBE_BOOT_SECTOR,
  PROBE_ROUNDS,
  PROBE_SEED_OFFSET,
  probeBootSector,
  readGuestProgress,
  runProbeGuest,
  xorshift32,
} from '../../src/vms/kvm-probe.ts';
import { cleanUpAtExit, createDirPool, ensureLibvirtd, LIBVIRT_SOCKET, removeDomains } from '../helpers/libvirtd.ts';

const run = promisify(execFile);

test('decision: no kvm in the capabilities → qemu', () => {
  const v = decideDomainType({ capabilities: ['qemu'] });
  assert.equal(v.domainType, 'qemu');
  assert.match(v.reason, /no kvm domain type/);
});

test('decision: KVM start refused (QEMU aborts setting an MSR) → qemu, the message is the reason', () => {
  const v = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: {
      outcome: 'refused',
      message: 'internal error: qemu unexpectedly closed the monitor: failed to set MSR 0x10a to 0x69',
    },
  });
  assert.equal(v.domainType, 'qemu');
  assert.match(v.reason, /could not start: .*failed to set MSR 0x10a/);
});

test('decision: KVM start accepted but no marker (a KVM that only pretends) → qemu', () => {
  const silent = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: { outcome: 'stalled', waitedMs: 10_000, progress: 'nothing', state: 'running' },
  });
  assert.equal(silent.domainType, 'qemu');
  assert.match(silent.reason, /started \(state running\) and ran no code .* in 10\.0 s: KVM only pretends/);
  const crawling = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: { outcome: 'stalled', waitedMs: 10_100, progress: 'memory-written', state: 'running' },
  });
  assert.equal(crawling.domainType, 'qemu');
  assert.match(crawling.reason, /wrote its memory but did not finish/);
  const wrong = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: { outcome: 'stalled', waitedMs: 300, progress: 'wrong-result', state: 'running' },
  });
  assert.equal(wrong.domainType, 'qemu');
  assert.match(wrong.reason, /wrong result/);
  const unprovable = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: { outcome: 'unprovable', message: 'no probe disk in storage pool "default": no such pool' },
  });
  assert.equal(unprovable.domainType, 'qemu');
  assert.match(unprovable.reason, /could not be proven/);
});

test('decision: marker seen (a machine where KVM works) → kvm, unless TCG did the same work faster', () => {
  const works = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: { outcome: 'finished', ms: 350 },
    tcg: { outcome: 'finished', ms: 1_200 },
  });
  assert.deepEqual(works, { domainType: 'kvm', reason: 'a KVM guest ran the probe in 0.3 s (TCG: 1.2 s)' });
  assert.equal(
    decideDomainType({
      capabilities: ['kvm', 'qemu'],
      kvm: { outcome: 'finished', ms: 400 },
      tcg: { outcome: 'refused', message: 'x' },
    }).domainType,
    'kvm',
  );
  const slow = decideDomainType({
    capabilities: ['kvm', 'qemu'],
    kvm: { outcome: 'finished', ms: 8_000 },
    tcg: { outcome: 'finished', ms: 1_100 },
  });
  assert.equal(slow.domainType, 'qemu');
  assert.match(slow.reason, /slower than under TCG/);
});

test('the guest memory the host reads: nothing, first phase, finished, wrong result', () => {
  const seed = 0x12345678;
  const expected = xorshift32(seed, PROBE_ROUNDS);
  const memory = Buffer.alloc(20);
  assert.equal(readGuestProgress(memory, seed, expected), 'nothing');
  memory.writeUInt32LE(0x04100000, 16);
  assert.equal(readGuestProgress(memory, seed, expected), 'memory-written');
  memory.write('KVMFLEET', 0, 'latin1');
  memory.writeUInt32LE(expected, 8);
  memory.writeUInt32LE(seed, 12);
  assert.equal(readGuestProgress(memory, seed, expected), 'finished');
  memory.writeUInt32LE((expected ^ 1) >>> 0, 8);
  assert.equal(readGuestProgress(memory, seed, expected), 'wrong-result');
  assert.equal(readGuestProgress(Buffer.alloc(8), seed, expected), 'nothing');
  // xorshift32 (13, 17, 5) from 1: Marsaglia's sequence starts 270369, 67634689.
  assert.equal(xorshift32(1, 1), 270369);
  assert.equal(xorshift32(1, 2), 67634689);
});

test('the probe boot sector is the assembly of src/vms/kvm-probe/boot-sector.S; the seed is patched at its label', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kvt-probe-as-'));
  try {
    await run('as', ['--64', '-o', join(dir, 'bs.o'), 'src/vms/kvm-probe/boot-sector.S']);
    await run('ld', ['-Ttext', '0x7c00', '--oformat', 'binary', '-o', join(dir, 'bs.bin'), join(dir, 'bs.o')]);
    assert.ok(
      (await readFile(join(dir, 'bs.bin'))).equals(PROBE_BOOT_SECTOR),
      'rebuild the bytes in src/vms/kvm-probe.ts from boot-sector.S',
    );
    const symbols = (await run('nm', [join(dir, 'bs.o')])).stdout;
    assert.equal(Number.parseInt(/^([0-9a-f]+) t seed$/m.exec(symbols)![1]!, 16), PROBE_SEED_OFFSET);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(PROBE_BOOT_SECTOR.length, 512);
  assert.equal(PROBE_BOOT_SECTOR.readUInt16LE(510), 0xaa55);
  assert.equal(probeBootSector(0xdeadbeef).readUInt32LE(PROBE_SEED_OFFSET), 0xdeadbeef);
  assert.equal(PROBE_BOOT_SECTOR.readUInt32LE(PROBE_SEED_OFFSET), 0, 'the template leaves the seed zero');
});

describeOnLibvirt();

function describeOnLibvirt() {
  const id = process.pid % 100000;
  const POOL = `kvt-probe-${id}`;
  let daemon: { stop(): Promise<void> };
  let client: LibvirtClient;
  let work: string;
  const exitCleanup = cleanUpAtExit([['pool-destroy', POOL]]);

  before(async () => {
    daemon = await ensureLibvirtd();
    client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, 'qemu:///system');
    work = await mkdtemp(join(tmpdir(), 'kvt-probe-'));
    await chmod(work, 0o755);
    await createDirPool(POOL, work);
  });
  after(async () => {
    await removeDomains('kvmfleet-probe-');
    await client?.close();
    exitCleanup();
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test(
    'under TCG the probe guest always finishes its work and the host reads the marker back through libvirt',
    { timeout: 120_000 },
    async () => {
      const pool = await client.lookupStoragePool(POOL);
      const volume = await client.createVolume(
        pool,
        `<volume><name>tcg.img</name><capacity unit='bytes'>1048576</capacity><target><format type='raw'/></target></volume>`,
      );
      try {
        await client.uploadVolume(volume, probeBootSector(0x0badcafe));
        const tcg = await runProbeGuest(client, 'qemu', await client.getVolumePath(volume), 0x0badcafe, 90_000);
        assert.equal(tcg.outcome, 'finished', JSON.stringify(tcg));
        // A wrong seed on the host side: the guest's value does not match, it is not taken as proof.
        const wrong = await runProbeGuest(client, 'qemu', await client.getVolumePath(volume), 0x0badcaff, 90_000);
        assert.equal(wrong.outcome, 'stalled');
      } finally {
        await client.deleteVolume(volume);
      }
      assert.deepEqual((await client.listVolumes(pool)).length, 0);
    },
  );

  test(
    'the probe agrees with reality on this machine: kvm only if a KVM guest runs, and the reason is recorded',
    { timeout: 180_000 },
    async () => {
      const verdict = await probeDomainType(client, { storagePool: POOL });
      assert.ok(verdict.reason.length > 10, verdict.reason);
      const capabilities = domainTypesFor(await client.getCapabilities());
      if (verdict.domainType === 'kvm') {
        // Said kvm: the same guest as a KVM domain really does finish (again, with a new seed).
        const observation = await observeKvm(client, capabilities, { storagePool: POOL });
        assert.equal(
          observation.kvm?.outcome,
          'finished',
          `probe said kvm (${verdict.reason}) but a second KVM run: ${JSON.stringify(observation.kvm)}`,
        );
      } else {
        // Said qemu: either libvirt offers no KVM, or the recorded run shows why.
        assert.match(
          verdict.reason,
          /no kvm domain type|could not start|only pretends|slower than under TCG|could not be proven/,
        );
        if (capabilities.includes('kvm'))
          assert.doesNotMatch(
            verdict.reason,
            /could not be proven/,
            'with a storage pool the probe must be able to run',
          );
      }
      // Nothing left behind: no probe domain, no probe volume.
      const domains = (await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'])).stdout;
      assert.doesNotMatch(domains, /kvmfleet-probe-/);
      assert.equal((await client.listVolumes(await client.lookupStoragePool(POOL))).length, 0);
    },
  );
}
