/**
 * VM rows for store tests that need VMs but no libvirt: the site "lab" and hypervisor "hv1" (made
 * when missing) and a bare VM row on it, written straight into the tables.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../src/store/schema.ts';

/** The id of hypervisor "hv1" in site "lab", both made when missing. */
export async function labHypervisor(db: Kysely<Database>): Promise<number> {
  const site = await db
    .insertInto('sites')
    .values({ name: 'lab', description: '', build_cap: 20 })
    .onConflict((oc) => oc.column('name').doUpdateSet({ name: 'lab' }))
    .returning('id')
    .executeTakeFirstOrThrow();
  const hv = await db
    .insertInto('hypervisors')
    .values({ name: 'hv1', uri: 'qemu+ssh://hv1/system', site_id: site.id })
    .onConflict((oc) => oc.column('name').doUpdateSet({ name: 'hv1' }))
    .returning('id')
    .executeTakeFirstOrThrow();
  return hv.id;
}

/** A VM row on hv1 (512 MiB, 1 vCPU, no disk), with a static address when `ip` is given. */
export async function insertBareVm(
  db: Kysely<Database>,
  vm: { name: string; uuid: string; ip?: string | null; networkId?: number | null },
): Promise<void> {
  await db
    .insertInto('vms')
    .values({
      name: vm.name,
      hypervisor_id: await labHypervisor(db),
      uuid: vm.uuid,
      memory_mib: 512,
      vcpus: 1,
      disk_path: null,
      seed_path: null,
      macs: '[]',
      anti_affinity: null,
      domain_spec: '{}',
      network_id: vm.networkId ?? null,
      ip: vm.ip ?? null,
    })
    .execute();
}
