/**
 * VM clones on qemu:///system, same image for everyone: a 1 GiB qcow2 template disk with 512 MiB
 * written (qemu-io), in a transient dir pool the bench makes and removes.
 * - linked clone: kvmfleet's whole clone (qcow2 overlay, cloud-init seed built and uploaded, domain
 *   defined) vs `virt-clone --auto-clone` of the template domain (which copies the disk: it has no
 *   linked clones) — the time an operator waits for one new VM;
 * - full clone throughput: kvmfleet's full clone (libvirt storage copy over RPC) vs `qemu-img
 *   convert -O qcow2` of the same disk, in MiB of allocated data per second;
 * - bulk: 20 linked clones through the job runner (4 at a time), total seconds.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSite } from '../src/fleet/sites.ts';
import { LibvirtPool } from '../src/protocols/libvirt/pool.ts';
import { openStore } from '../src/store/open.ts';
import { domainXml } from '../src/vms/domain-xml.ts';
import { registerHypervisor } from '../src/vms/hypervisors.ts';
import { JobRunner } from '../src/vms/jobs.ts';
import { VmService } from '../src/vms/vm-service.ts';
import { ensureLibvirtd } from '../test/helpers/libvirtd.ts';

const run = promisify(execFile);
const virsh = (...args: string[]) => run('virsh', ['-c', 'qemu:///system', ...args]);

export interface CloneBench {
  readonly linkedSeconds: { kvmfleet: number; virtClone: number };
  readonly fullMiBps: { kvmfleet: number; qemuImg: number };
  readonly bulk20Seconds: number;
}

const WRITTEN_MIB = 512;

export async function cloneBench(): Promise<CloneBench> {
  const daemon = await ensureLibvirtd();
  const id = `${process.pid % 100000}-${Date.now() % 100000}`;
  const poolName = `kvb-${id}`;
  const work = await mkdtemp(join(tmpdir(), 'kvb-clones-'));
  await chmod(work, 0o755);
  const store = await openStore({ dataDir: 'memory://' });
  const pool = new LibvirtPool();
  const names: string[] = [];
  try {
    await virsh('pool-create-as', poolName, 'dir', '--target', work);
    const base = join(work, 'tmpl.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1G']);
    await run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 0 ${WRITTEN_MIB}M`, base]);
    await virsh('pool-refresh', poolName);
    await createSite(store.db, { name: 'bench', buildCap: 1 });
    await registerHypervisor(store.db, pool, {
      name: 'hv',
      uri: 'qemu:///system',
      site: 'bench',
      storagePool: poolName,
      bridge: 'kvbnone',
      domainType: 'qemu',
      maxParallel: 4,
    });
    const vms = new VmService(store.db, pool, { cpuOvercommit: 64, reserveMiB: 0 });
    // The template, as kvmfleet keeps it (spec + disk), and as a libvirt domain for virt-clone.
    const spec = {
      name: `kvb-tmpl-${id}`,
      type: 'qemu' as const,
      memoryMiB: 128,
      vcpus: 1,
      disks: [{ source: base, format: 'qcow2' as const }],
      interfaces: [],
    };
    const hvId = (await store.db.selectFrom('hypervisors').select('id').executeTakeFirstOrThrow()).id;
    await store.db
      .insertInto('templates')
      .values({
        name: 'tmpl',
        hypervisor_id: hvId,
        disk_path: base,
        memory_mib: 128,
        vcpus: 1,
        domain_spec: JSON.stringify(spec),
        operations: '[]',
      })
      .execute();
    await run('sh', ['-c', `virsh -c qemu:///system define /dev/stdin <<'EOF'\n${domainXml(spec)}\nEOF`]);
    names.push(spec.name);

    let started = performance.now();
    await vms.clone({ template: 'tmpl', name: `kvb-linked-${id}`, kind: 'linked' });
    const linkedK = (performance.now() - started) / 1000;
    names.push(`kvb-linked-${id}`);
    started = performance.now();
    await run(
      'virt-clone',
      [
        '--connect',
        'qemu:///system',
        '--original',
        spec.name,
        '--name',
        `kvb-vc-${id}`,
        '--file',
        join(work, `vc-${id}.qcow2`),
      ],
      { maxBuffer: 1 << 24 },
    );
    const linkedV = (performance.now() - started) / 1000;
    names.push(`kvb-vc-${id}`);

    started = performance.now();
    await vms.clone({ template: 'tmpl', name: `kvb-full-${id}`, kind: 'full' });
    const fullK = WRITTEN_MIB / ((performance.now() - started) / 1000);
    names.push(`kvb-full-${id}`);
    started = performance.now();
    await run('qemu-img', ['convert', '-O', 'qcow2', base, join(work, `convert-${id}.qcow2`)]);
    const fullQ = WRITTEN_MIB / ((performance.now() - started) / 1000);

    const jobs = new JobRunner(store.db, vms);
    started = performance.now();
    const job = await jobs.wait(
      (
        await jobs.bulkClone({
          template: 'tmpl',
          count: 20,
          namePrefix: `kvb-bulk-${id}`,
          kind: 'linked',
          site: 'bench',
        })
      ).id,
    );
    const bulk = (performance.now() - started) / 1000;
    if (job.failed) throw new Error(`bulk clone: ${job.failed} failed: ${job.results.find((r) => !r.ok)?.error}`);
    for (const r of job.results) names.push(r.name);
    return {
      linkedSeconds: { kvmfleet: linkedK, virtClone: linkedV },
      fullMiBps: { kvmfleet: fullK, qemuImg: fullQ },
      bulk20Seconds: bulk,
    };
  } finally {
    for (const name of names) await virsh('undefine', name).catch(() => undefined);
    await virsh('pool-destroy', poolName).catch(() => undefined);
    await pool.close();
    await store.close();
    await rm(work, { recursive: true, force: true });
    await daemon.stop();
  }
}
