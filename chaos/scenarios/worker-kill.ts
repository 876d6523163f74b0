/**
 * SIGKILL of the worker (kvmfleet api + worker on the embedded store) in the middle of a bulk deploy
 * of 20 linked clones on the real libvirtd, then a restart. Promises checked: the job is taken up
 * again when its lease runs out and finishes; exactly 20 VMs exist — in kvmfleet and in virsh —
 * with distinct names, MACs and UUIDs, none made twice, and no half-made clone's volume left over.
 * (A bulk deploy takes no network, so its clones have no addresses to compare.)
 */
import { withCleanup } from '../lib/cleanup.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';
import { createVmLab, makeTemplate, ok, virsh } from '../lib/vm-lab.ts';

const COUNT = 20;

interface JobView {
  readonly id: number;
  readonly state: string;
  readonly done: number;
  readonly failed: number;
  readonly results: readonly { name: string; ok: boolean; error?: string }[];
}
interface VmView {
  readonly name: string;
  readonly uuid: string;
  readonly macs: readonly string[];
  readonly ip: string | null;
}

export const workerKill: Scenario = {
  name: 'worker-kill',
  fault: 'SIGKILL of the worker mid bulk deploy of 20 linked clones',
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const lab = await createVmLab(defer, 'wkill');
      const { template, sealS } = await makeTemplate(lab);
      const prefix = `${lab.prefix}-bulk`;
      const queued = (await ok(lab, 'POST', '/api/v1/jobs/bulk-clone', {
        template,
        count: COUNT,
        namePrefix: prefix,
        kind: 'linked',
        site: 'chaos',
      })) as JobView;
      let job = queued;
      const startedAt = Date.now();
      while (job.done < COUNT / 4 && Date.now() - startedAt < 180_000) {
        await new Promise((r) => setTimeout(r, 100));
        job = (await ok(lab, 'GET', `/api/v1/jobs/${queued.id}`)) as JobView;
      }
      const doneAtKill = job.done;
      await lab.crash();
      const killedAt = Date.now();
      await lab.start();
      while (!['succeeded', 'failed', 'partial', 'cancelled'].includes(job.state) && Date.now() - killedAt < 240_000) {
        await new Promise((r) => setTimeout(r, 500));
        job = (await ok(lab, 'GET', `/api/v1/jobs/${queued.id}`)) as JobView;
      }
      const resumedS = (Date.now() - killedAt) / 1000;
      const vms = ((await ok(lab, 'GET', '/api/v1/vms')) as { vms: VmView[] }).vms.filter((v) =>
        v.name.startsWith(prefix),
      );
      const domains = (await virsh('list', '--all', '--name'))
        .split('\n')
        .map((n) => n.trim())
        .filter((n) => n.startsWith(prefix));
      const volumes = (await virsh('vol-list', lab.pool))
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((n) => n.startsWith(prefix));
      const distinct = (values: readonly string[]) => new Set(values).size;
      const macs = vms.flatMap((v) => v.macs);
      findings.check(
        job.state === 'succeeded',
        `the job ended ${job.state} (${job.done} done, ${job.failed} failed${job.results.find((r) => !r.ok) ? `: ${job.results.find((r) => !r.ok)!.error}` : ''})`,
      );
      findings.check(
        vms.length === COUNT && distinct(vms.map((v) => v.name)) === COUNT,
        `kvmfleet lists ${vms.length} VMs (${distinct(vms.map((v) => v.name))} names)`,
      );
      findings.check(domains.length === COUNT, `virsh lists ${domains.length} domains`);
      findings.check(
        distinct(macs) === macs.length && distinct(vms.map((v) => v.uuid)) === vms.length,
        `MACs or UUIDs repeat (${distinct(macs)}/${macs.length} MACs)`,
      );
      // Each clone is a disk (NAME.qcow2) and a cloud-init seed (NAME-seed.img): a half-made one would show as a lone one.
      const disks = volumes.filter((v) => v.endsWith('.qcow2')).length;
      const seeds = volumes.filter((v) => v.endsWith('-seed.img')).length;
      findings.check(
        disks === COUNT && seeds === COUNT && volumes.length === 2 * COUNT,
        `pool volumes: ${disks} disks, ${seeds} seeds, ${volumes.length} in all (wanted ${COUNT}, ${COUNT}, ${2 * COUNT})`,
      );
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      const made = new Set([...domains, ...vms.map((v) => v.name)]);
      return {
        figures: `seal ${sealS.toFixed(0)} s; killed at ${doneAtKill}/${COUNT} done; job ${job.state} ${resumedS.toFixed(0)} s after the kill (${job.done} done, ${job.failed} failed); VMs: kvmfleet ${vms.length}, virsh ${domains.length}, volumes ${disks} disks + ${seeds} seeds, distinct MACs ${distinct(macs)}, UUIDs ${distinct(vms.map((v) => v.uuid))}`,
        lost: Math.max(0, COUNT - made.size) + Math.max(0, domains.length - COUNT),
        failures: findings.failures,
      };
    }),
};
