/**
 * Reaching a VM's hypervisor: what every VM module shares (the store, the libvirt connection pool, the
 * state watch, the placement policy), running work on a hypervisor's libvirt connection or on a
 * managed VM's domain, its storage pool, and how a failure there is reported — a libvirt error
 * (KVMF_ERR_LIBVIRT) apart from a hypervisor that could not be reached (KVMF_ERR_HYPERVISOR_UNAVAILABLE).
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { LibvirtError } from '../protocols/libvirt/connection.ts';
import type { LibvirtPool } from '../protocols/libvirt/pool.ts';
import type { LibvirtClient } from '../protocols/libvirt/remote.ts';
import type { RemoteDomain, RemoteStoragePool } from '../protocols/libvirt/types.ts';
import type { Database } from '../store/schema.ts';
import { getHypervisor, reprobeHypervisor, type Hypervisor } from './hypervisors.ts';
import type { PlacementPolicy } from './placement.ts';
import { getVm } from './vm-rows.ts';

export type HypervisorRow = Hypervisor & { id: number };

export interface VmContext {
  readonly db: Kysely<Database>;
  readonly pool: LibvirtPool;
  readonly policy: PlacementPolicy;
  /** Keeps the states of a hypervisor's VMs current from its lifecycle events (see lifecycle.ts). */
  readonly watch: (hv: HypervisorRow) => Promise<void>;
}

function libvirtFailure(error: unknown, what: string): KvmfleetError {
  if (error instanceof KvmfleetError) return error;
  if (error instanceof LibvirtError) return new KvmfleetError(ErrorCode.Libvirt, `${what}: ${error.message}`);
  return new KvmfleetError(ErrorCode.HypervisorUnavailable, `${what}: ${(error as Error).message}`);
}

/** Runs `fn` on hypervisor `hypervisor`'s libvirt connection (a failure says `what` was being done). */
export async function withHypervisor<T>(
  ctx: VmContext,
  hypervisor: string,
  what: string,
  fn: (client: LibvirtClient, hv: HypervisorRow) => Promise<T>,
): Promise<T> {
  let hv = await getHypervisor(ctx.db, hypervisor);
  try {
    // A hypervisor registered by its install callback has no domain type yet: probe it at first use.
    if (hv.domainType === null)
      (await reprobeHypervisor(ctx.db, ctx.pool, hypervisor), (hv = await getHypervisor(ctx.db, hypervisor)));
    return await ctx.pool.use(hv.uri, (client) => fn(client, hv));
  } catch (error) {
    throw libvirtFailure(error, `${what} on ${hypervisor}`);
  }
}

/** Runs `work` on a managed VM's libvirt domain, on its hypervisor (a failure says `what` was being done). */
export async function onDomain<T>(
  ctx: VmContext,
  name: string,
  what: string,
  work: (client: LibvirtClient, dom: RemoteDomain) => Promise<T>,
): Promise<T> {
  const vm = await getVm(ctx.db, name);
  return withHypervisor(ctx, vm.hypervisor, `${what} ${name}`, async (client) =>
    work(client, await client.lookupDomainByName(name)),
  );
}

/** The hypervisor's storage pool for kvmfleet's volumes; a missing one is the operator's to fix. */
export async function storagePool(client: LibvirtClient, hv: Hypervisor): Promise<RemoteStoragePool> {
  try {
    return await client.lookupStoragePool(hv.storagePool);
  } catch (error) {
    throw new KvmfleetError(
      ErrorCode.Validation,
      `hypervisor ${hv.name} has no storage pool "${hv.storagePool}": ${(error as Error).message}`,
    );
  }
}
