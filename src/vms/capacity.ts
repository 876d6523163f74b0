/**
 * Placement over the store: each hypervisor's capacity as libvirt last reported it (hypervisors.ts)
 * with what kvmfleet has put on it (the sum of its VM rows and their anti-affinity groups), handed to
 * the pure rule in placement.ts. A demand nothing can take is KVMF_ERR_NO_PLACEMENT with the reasons.
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { listHypervisors } from './hypervisors.ts';
import { planPlacements, type HostCapacity, type PlacementPolicy, type VmDemand } from './placement.ts';

/** What the placement rule sees: each hypervisor's capacity and what kvmfleet put on it. */
export async function capacities(
  db: Kysely<Database>,
  site: string,
  only?: readonly string[],
): Promise<HostCapacity[]> {
  const hvs = (await listHypervisors(db, site)).filter((h) => !only || only.includes(h.name));
  const usage = await db
    .selectFrom('vms')
    .innerJoin('hypervisors', 'hypervisors.id', 'vms.hypervisor_id')
    .select([
      'hypervisors.name as hypervisor',
      sql<number>`sum(vms.memory_mib)`.as('memory'),
      sql<number>`sum(vms.vcpus)`.as('vcpus'),
      sql<string[]>`array_remove(array_agg(vms.anti_affinity), null)`.as('groups'),
    ])
    .groupBy('hypervisors.name')
    .execute();
  const byName = new Map(usage.map((u) => [u.hypervisor, u]));
  return hvs.map((h) => ({
    name: h.name,
    up: h.health === 'up',
    cpus: h.cpus ?? 0,
    memoryMiB: h.memoryMiB ?? 0,
    usedMemoryMiB: Number(byName.get(h.name)?.memory ?? 0),
    usedVcpus: Number(byName.get(h.name)?.vcpus ?? 0),
    groups: byName.get(h.name)?.groups ?? [],
  }));
}

/** Chooses hypervisors for demands in a site (see placement.ts). */
export async function place(
  db: Kysely<Database>,
  policy: PlacementPolicy,
  site: string,
  demands: readonly VmDemand[],
  only?: readonly string[],
): Promise<string[]> {
  const plans = planPlacements(demands, await capacities(db, site, only), policy);
  return plans.map((p, i) => {
    if (!p.ok)
      throw new KvmfleetError(
        ErrorCode.NoPlacement,
        `no hypervisor in site "${site}" can take VM ${i + 1} (${demands[i]!.memoryMiB} MiB, ${demands[i]!.vcpus} vCPUs): ${p.reasons.join('; ')}`,
      );
    return p.hypervisor;
  });
}
