/**
 * Where a new VM goes: one pure function over the hypervisors of a site and what they already
 * carry. Rules, in order: the hypervisor is up; it has the memory (after a reserve for the host
 * itself) and the vCPUs (within the overcommit ratio); no VM of the same anti-affinity group is
 * on it. Among those left, the one with the most free memory wins (then fewest vCPUs per CPU, then
 * name, so the choice is stable). A bulk plan places one VM at a time, counting the ones placed.
 */
export interface HostCapacity {
  readonly name: string;
  readonly up: boolean;
  readonly cpus: number;
  readonly memoryMiB: number;
  /** Allocated to VMs kvmfleet knows on this hypervisor (defined, running or not). */
  readonly usedMemoryMiB: number;
  readonly usedVcpus: number;
  /** Anti-affinity groups of the VMs already there. */
  readonly groups: readonly string[];
  /** At most this many new VMs from this plan (e.g. the job's per-hypervisor limit); default: no limit. */
  readonly maxNew?: number;
}

export interface VmDemand {
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly antiAffinity?: string | undefined;
}

export interface PlacementPolicy {
  /** vCPUs allowed per physical CPU. */
  readonly cpuOvercommit: number;
  /** Memory kept for the hypervisor itself. */
  readonly reserveMiB: number;
}

export const DEFAULT_PLACEMENT_POLICY: PlacementPolicy = { cpuOvercommit: 4, reserveMiB: 1024 };

export type Placement =
  { readonly ok: true; readonly hypervisor: string } | { readonly ok: false; readonly reasons: readonly string[] };

function refusal(host: HostCapacity, demand: VmDemand, policy: PlacementPolicy): string | undefined {
  if (!host.up) return `${host.name}: not up`;
  const freeMemory = host.memoryMiB - policy.reserveMiB - host.usedMemoryMiB;
  if (freeMemory < demand.memoryMiB)
    return `${host.name}: ${Math.max(0, freeMemory)} MiB free, ${demand.memoryMiB} MiB needed`;
  const vcpuLimit = Math.floor(host.cpus * policy.cpuOvercommit);
  if (host.usedVcpus + demand.vcpus > vcpuLimit)
    return `${host.name}: ${host.usedVcpus} of ${vcpuLimit} vCPUs allocated, ${demand.vcpus} more needed`;
  if (demand.antiAffinity && host.groups.includes(demand.antiAffinity))
    return `${host.name}: already runs a VM of anti-affinity group "${demand.antiAffinity}"`;
  if (host.maxNew !== undefined && host.maxNew <= 0) return `${host.name}: no room left in this plan`;
  return undefined;
}

export function placeVm(
  demand: VmDemand,
  hosts: readonly HostCapacity[],
  policy: PlacementPolicy = DEFAULT_PLACEMENT_POLICY,
): Placement {
  if (hosts.length === 0) return { ok: false, reasons: ['no hypervisors in the site'] };
  const reasons: string[] = [];
  const fit: HostCapacity[] = [];
  for (const host of hosts) {
    const why = refusal(host, demand, policy);
    if (why) reasons.push(why);
    else fit.push(host);
  }
  if (fit.length === 0) return { ok: false, reasons };
  const free = (h: HostCapacity) => h.memoryMiB - h.usedMemoryMiB;
  fit.sort((a, b) => free(b) - free(a) || a.usedVcpus / a.cpus - b.usedVcpus / b.cpus || a.name.localeCompare(b.name));
  return { ok: true, hypervisor: fit[0]!.name };
}

/** Places `demands` in order, each seeing the ones before it. */
export function planPlacements(
  demands: readonly VmDemand[],
  hosts: readonly HostCapacity[],
  policy: PlacementPolicy = DEFAULT_PLACEMENT_POLICY,
): Placement[] {
  const state = new Map(hosts.map((h) => [h.name, { ...h, groups: [...h.groups] }]));
  return demands.map((demand) => {
    const placement = placeVm(demand, [...state.values()], policy);
    if (placement.ok) {
      const host = state.get(placement.hypervisor)!;
      host.usedMemoryMiB += demand.memoryMiB;
      host.usedVcpus += demand.vcpus;
      if (demand.antiAffinity) host.groups.push(demand.antiAffinity);
      if (host.maxNew !== undefined) host.maxNew -= 1;
    }
    return placement;
  });
}
