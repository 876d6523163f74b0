/**
 * VMs end to end against a real libvirtd (qemu:///system, TCG guests): create a VM that boots the
 * test OS (test/helpers/test-os.ts), seal it with virt-sysprep, make 5 linked and 1 full clone that
 * boot with their own hostname from a cloud-init seed, run the lifecycle as virsh shows it, and
 * bulk-deploy 20 linked clones across two hypervisors (the second is the same daemon reached as
 * qemu+ssh:// through a real sshd on loopback, as a remote hypervisor would be).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { KvmfleetError } from '../../src/errors.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createSite } from '../../src/fleet/sites.ts';
import { LibvirtPool } from '../../src/protocols/libvirt/pool.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { registerHypervisor, type Hypervisor } from '../../src/vms/hypervisors.ts';
import type { JobEvent } from '../../src/vms/job-model.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import { planPlacements } from '../../src/vms/placement.ts';
import { VmService } from '../../src/vms/vm-service.ts';
import { findCloudKernel } from '../helpers/busybox-initramfs.ts';
import {
  cleanUpAtExit,
  createDirPool,
  createIsolatedBridge,
  ensureLibvirtd,
  removeDomains,
} from '../helpers/libvirtd.ts';
import { startSshd, type Sshd } from '../helpers/sshd.ts';
import { buildTestOsBoot, buildTestOsDisk, TEST_OS_LOGIN, type TestOs } from '../helpers/test-os.ts';
import { failpoint } from '../helpers/failpoint.ts';

const run = promisify(execFile);
const id = process.pid % 100000;
const PREFIX = `kvt-vm-${id}`;
const POOL = `kvt-vms-${id}`;
const BRIDGE = `kvfvm${id}`;
const virsh = async (...args: string[]) => (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;
const exitCleanup = cleanUpAtExit([['pool-destroy', POOL]], [BRIDGE]);

let work: string;
let serialDir: string;
let store: Store;
let pool: LibvirtPool;
let vms: VmService;
let jobs: JobRunner;
let daemon: { stop(): Promise<void> };
let sshd: Sshd;
let os: TestOs;
let hv1: Hypervisor;
const clones = [1, 2, 3, 4, 5].map((n) => `${PREFIX}-linked-${n}`);
const fullClone = `${PREFIX}-full-1`;
const source = `${PREFIX}-src`;
const template = `${PREFIX}-tmpl`;

async function waitForLogin(
  file: string,
  timeoutMs: number,
  from = 0,
): Promise<{ hostname: string; machineId: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await readFile(file, 'latin1').catch(() => '')).slice(from);
    const m = TEST_OS_LOGIN.exec(text);
    if (m) return { hostname: m[1]!, machineId: m[2]! };
    if (Date.now() > deadline)
      throw new Error(`no login line in ${file} after ${timeoutMs / 1000} s:\n${text.slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const serialOf = (name: string) => join(serialDir, `${name}.serial.log`);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-vms-'));
  await chmod(work, 0o755);
  serialDir = join(work, 'serial');
  await mkdir(serialDir, { recursive: true });
  await chmod(serialDir, 0o777); // QEMU (libvirt-qemu) writes the consoles here
  await mkdir(join(work, 'pool'));
  await createIsolatedBridge(BRIDGE);
  daemon = await ensureLibvirtd();
  await createDirPool(POOL, join(work, 'pool'));
  os = await buildTestOsBoot(await findCloudKernel(), join(work, 'boot'));
  await buildTestOsDisk(join(work, 'pool', `${source}.qcow2`));
  await virsh('pool-refresh', POOL);
  sshd = await startSshd();

  store = await openStore({ dataDir: 'memory://' });
  await createSite(store.db, { name: 'lab', buildCap: 10 });
  pool = new LibvirtPool();
  // Two CPUs here: allow many vCPUs per CPU so 26 small guests fit on two "hypervisors".
  vms = new VmService(store.db, pool, { cpuOvercommit: 16, reserveMiB: 1024 });
  jobs = new JobRunner(store.db, vms);
});

after(async () => {
  await removeDomains(PREFIX);
  await pool?.close();
  await store?.close();
  await sshd?.stop();
  exitCleanup();
  await daemon?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test(
  'a hypervisor registers by URI: capacity from libvirt, domain type probed (kvm only where a KVM guest is seen to run code)',
  { timeout: 120_000 },
  async () => {
    hv1 = await registerHypervisor(store.db, pool, {
      name: 'hv1',
      uri: 'qemu:///system',
      site: 'lab',
      storagePool: POOL,
      bridge: BRIDGE,
      maxParallel: 4,
    });
    assert.equal(hv1.health, 'up');
    const node = (await run('virsh', ['-c', 'qemu:///system', 'nodeinfo'])).stdout;
    assert.equal(hv1.cpus, Number(/CPU\(s\):\s+(\d+)/.exec(node)![1]));
    assert.equal(hv1.memoryMiB, Math.floor(Number(/Memory size:\s+(\d+) KiB/.exec(node)![1]) / 1024));
    assert.ok(hv1.poolCapacityBytes! > 0 && hv1.poolAvailableBytes! > 0);
    // No assumption about this machine's KVM: the probe's verdict is recorded with what it saw, and
    // the next test boots a guest of that type to its login line (so a "kvm" verdict is checked too).
    assert.ok(hv1.domainType === 'kvm' || hv1.domainType === 'qemu');
    assert.ok(hv1.probedAt);
    if (hv1.domainType === 'kvm') assert.match(hv1.domainTypeReason ?? '', /a KVM guest ran the probe in/);
    else
      assert.match(
        hv1.domainTypeReason ?? '',
        /no kvm domain type|could not start|only pretends|slower than under TCG/,
      );
    await assert.rejects(
      registerHypervisor(store.db, pool, { name: 'hv1', uri: 'qemu:///system', site: 'lab' }),
      /already has that name or URI/,
    );
    await assert.rejects(
      registerHypervisor(store.db, pool, { name: 'bad', uri: 'qemu://far/system', site: 'lab' }),
      /TLS is not supported/,
    );
  },
);

test(
  'create (the virt-install job): the VM boots the test OS to its login line; sealing a running VM is refused',
  { timeout: 180_000 },
  async () => {
    const vm = await vms.create({
      name: source,
      hypervisor: 'hv1',
      memoryMiB: 256,
      vcpus: 1,
      source: { kind: 'import', disk: join(work, 'pool', `${source}.qcow2`) },
      directBoot: { kernel: os.kernel, initrd: os.initrd, cmdline: os.cmdline },
      serial: { file: serialOf(source) },
      osVariant: 'linux2022',
    });
    assert.equal(vm.state, 'running');
    assert.match(await virsh('domstate', source), /running/);
    assert.match(
      await virsh('dumpxml', source),
      new RegExp(`<domain type='${hv1.domainType}'`),
      'the VM runs as the probe decided',
    );
    const login = await waitForLogin(serialOf(source), 120_000);
    assert.deepEqual(login, { hostname: 'template-source', machineId: '0123456789abcdef0123456789abcdef' });
    await assert.rejects(vms.sealTemplate(source, template), (e: KvmfleetError) => e.code === 'KVMF_ERR_VM_RUNNING');
  },
);

test('ACPI shutdown powers the guest off; virt-sysprep seals it as a template', { timeout: 300_000 }, async () => {
  const down = await vms.shutdown(source, { timeoutS: 60 });
  assert.equal(down.forced, false, 'the guest powered itself off on the ACPI request');
  assert.equal(down.state, 'shutoff');
  assert.match(await virsh('domstate', source), /shut off/);
  const sealed = await vms.sealTemplate(source, template);
  for (const op of ['machine-id', 'ssh-hostkeys', 'logfiles'])
    assert.ok(sealed.operations.includes(op), `${op} in ${sealed.operations.join(', ')}`);
  assert.equal(sealed.linkedClones, 0);
  assert.doesNotMatch(
    await virsh('list', '--all', '--name'),
    new RegExp(`^${source}$`, 'm'),
    'the sealed VM is no longer a domain anyone can start',
  );
  await assert.rejects(vms.getVm(source), /does not exist/);
});

test(
  '5 linked clones and 1 full clone boot with their own hostname and machine-id, distinct MACs and UUIDs; only linked ones have a backing file',
  { timeout: 420_000 },
  async () => {
    const made = [];
    for (const name of clones)
      made.push(await vms.clone({ template, name, kind: 'linked', start: true, serialLogDir: serialDir }));
    made.push(await vms.clone({ template, name: fullClone, kind: 'full', start: true, serialLogDir: serialDir }));
    failpoint('vms:clones-running');
    const logins = await Promise.all(made.map((vm) => waitForLogin(serialOf(vm.name), 240_000)));
    made.forEach((vm, i) =>
      assert.equal(logins[i]!.hostname, vm.name.toLowerCase(), `${vm.name} took its hostname from its seed`),
    );
    assert.equal(
      new Set(logins.map((l) => l.machineId)).size,
      made.length,
      'sealing removed the machine-id: each clone made its own',
    );
    assert.ok(!logins.some((l) => l.machineId === '0123456789abcdef0123456789abcdef'));
    assert.equal(new Set(made.map((v) => v.macs[0])).size, made.length, 'distinct MACs');
    assert.equal(new Set(made.map((v) => v.uuid)).size, made.length, 'distinct UUIDs');
    for (const vm of made) assert.equal((await virsh('domuuid', vm.name)).trim(), vm.uuid);
    for (const vm of made) {
      const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', vm.disk!])).stdout) as {
        'backing-filename'?: string;
      };
      if (vm.cloneKind === 'linked')
        assert.match(
          info['backing-filename'] ?? '',
          new RegExp(`${source}\\.qcow2$`),
          `${vm.name} is backed by the template`,
        );
      else assert.equal(info['backing-filename'], undefined, `${vm.name} is independent`);
    }
    await assert.rejects(
      vms.deleteTemplate(template),
      (e: KvmfleetError) => e.code === 'KVMF_ERR_IN_USE' && /5 linked clones/.test(e.message),
    );
  },
);

test(
  'clones can take static addresses from a kvmfleet network: distinct even when made at once, in their seeds',
  { timeout: 120_000 },
  async () => {
    await createNetwork(store.db, {
      name: 'lab-vms',
      site: 'lab',
      cidr: '10.60.0.0/24',
      gateway: '10.60.0.1',
      dns: ['10.60.0.1'],
      domain: 'vms.example.com',
      dynamicRange: { start: '10.60.0.2', end: '10.60.0.9' },
    });
    const names = [1, 2, 3, 4].map((n) => `${PREFIX}-addr-${n}`);
    const made = await Promise.all(
      names.map((name) => vms.clone({ template, name, kind: 'linked', identity: { network: 'lab-vms' } })),
    );
    assert.deepEqual(
      made.map((v) => v.ip).sort(),
      ['10.60.0.10', '10.60.0.11', '10.60.0.12', '10.60.0.13'],
      'after the gateway and the dynamic range, one each',
    );
    const seed = made[0]!;
    const row = await store.db
      .selectFrom('vms')
      .select('seed_path')
      .where('name', '=', seed.name)
      .executeTakeFirstOrThrow();
    const { stdout } = await run('mtype', ['-i', row.seed_path!, '::/network-config']);
    assert.match(
      stdout,
      new RegExp(
        `macaddress: "${seed.macs[0]}"[\\s\\S]*addresses: \\["${seed.ip!.replace(/\./g, '\\.')}/24"\\][\\s\\S]*via: "10\\.60\\.0\\.1"`,
      ),
    );
    const userData = (await run('mtype', ['-i', row.seed_path!, '::/user-data'])).stdout;
    assert.match(userData, new RegExp(`fqdn: "${seed.name.toLowerCase()}\\.vms\\.example\\.com"`));
    await assert.rejects(vms.clone({ template, name: names[0]!, kind: 'linked' }), /already exists/);
    assert.equal(
      (await store.db.selectFrom('vms').select('id').where('name', '=', names[0]!).execute()).length,
      1,
      'a refused clone leaves no second row',
    );
    for (const name of names) await vms.undefine(name, { removeStorage: true });
  },
);

test('destroy, shutdown, undefine and list agree with virsh list --all', { timeout: 300_000 }, async () => {
  const [a, b, c] = clones as [string, string, string];
  await vms.destroy(a);
  assert.match(await virsh('domstate', a), /shut off/);
  const down = await vms.shutdown(b, { timeoutS: 60, force: true });
  assert.equal(down.state, 'shutoff');
  await assert.rejects(vms.undefine(c), (e: KvmfleetError) => e.code === 'KVMF_ERR_VM_RUNNING');
  await vms.destroy(c);
  await vms.undefine(c, { removeStorage: true });
  assert.doesNotMatch(await virsh('list', '--all', '--name'), new RegExp(`^${c}$`, 'm'));
  assert.doesNotMatch(await virsh('vol-list', POOL), new RegExp(`${c}\\.qcow2`), 'its disk went with it');

  const listed = await vms.list();
  const table = (await virsh('list', '--all'))
    .split('\n')
    .slice(2)
    .map((l) => l.trim().split(/\s{2,}/))
    .filter((cols) => cols.length >= 3);
  const virshState = new Map(table.map(([, name, state]) => [name!, state!.replace(' ', '')]));
  for (const vm of listed.vms.filter((v) => v.hypervisor === 'hv1')) {
    assert.equal(vm.live, true);
    assert.equal(
      vm.state,
      virshState.get(vm.name),
      `${vm.name}: kvmfleet says ${vm.state}, virsh ${virshState.get(vm.name)}`,
    );
  }
  assert.deepEqual(
    listed.vms.map((v) => v.name).sort(),
    [clones[0], clones[1], clones[3], clones[4], fullClone].sort(),
  );
  // Events keep the stored state current without a list call.
  const row = await store.db.selectFrom('vms').select('state').where('name', '=', a).executeTakeFirstOrThrow();
  assert.equal(row.state, 'shutoff');
});

test(
  'bulk deploy: 20 linked clones across two hypervisors, placed by free memory, with progress and a per-VM result',
  { timeout: 300_000 },
  async () => {
    const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.clientKey}&known_hosts=${sshd.knownHosts}`;
    const hv2 = await registerHypervisor(store.db, pool, {
      name: 'hv2',
      uri,
      site: 'lab',
      storagePool: POOL,
      bridge: BRIDGE,
      maxParallel: 4,
      domainType: 'qemu',
    });
    assert.equal(hv2.health, 'up');
    const tpl = await vms.getTemplate(template);
    const expected = planPlacements(
      Array.from({ length: 20 }, () => ({ memoryMiB: tpl.memoryMiB, vcpus: tpl.vcpus })),
      await vms.capacities('lab'),
      { cpuOvercommit: 16, reserveMiB: 1024 },
    );
    const expectedCount = (hv: string) => expected.filter((p) => p.ok && p.hypervisor === hv).length;
    const events: JobEvent[] = [];
    jobs.on('progress', (e) => events.push(e));
    const started = Date.now();
    const job = await jobs.bulkClone({
      template,
      count: 20,
      namePrefix: `${PREFIX}-bulk`,
      kind: 'linked',
      site: 'lab',
    });
    assert.ok(['queued', 'running'].includes(job.state), job.state);
    const done = await jobs.wait(job.id);
    const seconds = (Date.now() - started) / 1000;
    console.log(`# bulk deploy of 20 linked clones: ${seconds.toFixed(1)} s`);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.results.filter((r) => !r.ok)));
    assert.equal(done.done, 20);
    assert.equal(done.results.length, 20);
    const per = (hv: string) => done.results.filter((r) => r.hypervisor === hv).length;
    assert.deepEqual(
      [per('hv1'), per('hv2')],
      [expectedCount('hv1'), expectedCount('hv2')],
      'placement as the rule computes it',
    );
    assert.ok(per('hv1') > 0 && per('hv2') > 0, 'both hypervisors used');
    const progress = events.filter((e) => e.job === job.id && e.item);
    assert.deepEqual(
      progress.map((e) => e.done),
      Array.from({ length: 20 }, (_, i) => i + 1),
      'one progress event per VM, in order',
    );
    const names = (await virsh('list', '--all', '--name')).split('\n').filter((n) => n.startsWith(`${PREFIX}-bulk-`));
    assert.equal(names.length, 20);
    // A failed VM is reported and does not stop the rest: a clone whose name is already taken fails.
    const again = await jobs.wait(
      (await jobs.bulkClone({ template, count: 2, namePrefix: `${PREFIX}-bulk`, kind: 'linked', site: 'lab' })).id,
    );
    assert.equal(again.state, 'failed');
    assert.equal(again.failed, 2);
    assert.match(again.results[0]!.error!, /already exists/);
    await writeFile(join(work, 'bulk-seconds.txt'), String(seconds));
  },
);
