/**
 * A VM's life after it is made: start, ACPI shutdown with a timeout then optional destroy, destroy,
 * autostart, undefine with or without its storage, and its state — read from libvirt after each step
 * and kept current from libvirt's lifecycle events (StateWatch); listing shows live states across every
 * hypervisor, and the domains kvmfleet does not manage. The store holds what kvmfleet made; libvirt
 * holds what runs.
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { LibvirtPool } from '../protocols/libvirt/pool.ts';
import { UndefineFlags, type LifecycleEvent } from '../protocols/libvirt/remote.ts';
import type { RemoteDomain } from '../protocols/libvirt/types.ts';
import type { Database } from '../store/schema.ts';
import { listHypervisors } from './hypervisors.ts';
import { onDomain, storagePool, withHypervisor, type HypervisorRow, type VmContext } from './on-hypervisor.ts';
import { deleteVmRow, getVm, listVmRows, setVmState, type Vm } from './vm-rows.ts';

export interface VmListing {
  vms: (Vm & { live: boolean })[];
  unmanaged: { hypervisor: string; name: string; state: string }[];
}

/** libvirt's lifecycle event → the state kvmfleet shows. */
export function stateAfterEvent(event: LifecycleEvent['event']): string | undefined {
  switch (event) {
    case 'started':
    case 'resumed':
      return 'running';
    case 'suspended':
      return 'paused';
    case 'stopped':
    case 'shutdown':
      return 'shutoff';
    case 'crashed':
      return 'crashed';
    case 'pmsuspended':
      return 'pmsuspended';
    default:
      return undefined;
  }
}

export interface VmStateEvent {
  readonly name: string;
  readonly hypervisor: string;
  readonly state: string;
  /** libvirt's event, e.g. "started", "stopped". */
  readonly event: string;
}

/** Keeps VM states current from each hypervisor's lifecycle events, and tells `onState` of each change. */
export class StateWatch {
  readonly #db: Kysely<Database>;
  readonly #pool: LibvirtPool;
  readonly #onState: (event: VmStateEvent) => void;
  readonly #watching = new Set<string>();

  constructor(db: Kysely<Database>, pool: LibvirtPool, onState: (event: VmStateEvent) => void) {
    this.#db = db;
    this.#pool = pool;
    this.#onState = onState;
  }

  /** Subscribes to the hypervisor's events (once per hypervisor). */
  async watch(hv: HypervisorRow): Promise<void> {
    if (this.#watching.has(hv.uri)) return;
    this.#watching.add(hv.uri);
    await this.#pool.onLifecycle(hv.uri, (event) => {
      const state = stateAfterEvent(event.event);
      if (!state) return;
      this.#onState({ name: event.domain.name, hypervisor: hv.name, state, event: event.event });
      void setVmState(this.#db, { name: event.domain.name, hypervisorId: hv.id }, state).catch(() => undefined);
    });
  }
}

/** Reads the domain's state from libvirt into the row (kept as last known when the hypervisor does not answer). */
export async function refreshState(ctx: VmContext, name: string): Promise<Vm> {
  const vm = await getVm(ctx.db, name);
  try {
    const state = await withHypervisor(
      ctx,
      vm.hypervisor,
      'read state',
      async (client) => (await client.getDomainState(await client.lookupDomainByName(name))).state,
    );
    await setVmState(ctx.db, { id: vm.id }, state);
  } catch {
    /* state stays as last known */
  }
  return getVm(ctx.db, name);
}

export async function startVm(ctx: VmContext, name: string): Promise<Vm> {
  await onDomain(ctx, name, 'start', async (client, dom) => {
    if ((await client.getDomainState(dom)).state !== 'running') await client.startDomain(dom);
  });
  return refreshState(ctx, name);
}

/** ACPI shutdown; after `timeoutS` still running: destroyed when `force`, else an error. */
export async function shutdownVm(
  ctx: VmContext,
  name: string,
  options: { timeoutS?: number; force?: boolean } = {},
): Promise<Vm & { forced: boolean }> {
  const timeoutMs = (options.timeoutS ?? 120) * 1000;
  const forced = await onDomain(ctx, name, 'shut down', async (client, dom) => {
    if ((await client.getDomainState(dom)).state === 'shutoff') return false;
    await client.shutdownDomain(dom);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await client.getDomainState(dom)).state === 'shutoff') return false;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (!options.force)
      throw new KvmfleetError(
        ErrorCode.VmRunning,
        `${name} did not shut down within ${options.timeoutS ?? 120} s (use --force to destroy it)`,
      );
    await client.destroyDomain(dom);
    return true;
  });
  return { ...(await refreshState(ctx, name)), forced };
}

export async function destroyVm(ctx: VmContext, name: string): Promise<Vm> {
  await onDomain(ctx, name, 'destroy', async (client, dom) => {
    if ((await client.getDomainState(dom)).state !== 'shutoff') await client.destroyDomain(dom);
  });
  return refreshState(ctx, name);
}

export async function setAutostart(ctx: VmContext, name: string, on: boolean): Promise<void> {
  await onDomain(ctx, name, 'autostart', (client, dom) => client.setDomainAutostart(dom, on));
}

/** Removes the definition (a running VM is refused); with storage, its disk and seed volumes too. */
export async function undefineVm(
  ctx: VmContext,
  name: string,
  options: { removeStorage?: boolean } = {},
): Promise<void> {
  const vm = await getVm(ctx.db, name);
  await withHypervisor(ctx, vm.hypervisor, `undefine ${name}`, async (client, hv) => {
    let dom: RemoteDomain | undefined;
    try {
      dom = await client.lookupDomainByName(name);
    } catch {
      dom = undefined; // already gone from libvirt: forget it here too
    }
    if (dom) {
      if ((await client.getDomainState(dom)).state !== 'shutoff')
        throw new KvmfleetError(ErrorCode.VmRunning, `${name} is running: shut it down or destroy it first`);
      await client.undefineDomain(
        dom,
        UndefineFlags.ManagedSave | UndefineFlags.SnapshotsMetadata | UndefineFlags.Nvram,
      );
    }
    if (options.removeStorage) {
      const pool = await storagePool(client, hv);
      for (const path of [vm.disk, vm.seedPath]) {
        if (!path) continue;
        const volume = await client.lookupVolume(pool, path.split('/').at(-1)!).catch(() => undefined);
        if (volume) await client.deleteVolume(volume);
      }
    }
  });
  await deleteVmRow(ctx.db, vm.id);
}

/** Every VM kvmfleet manages, with its live state where its hypervisor answers; plus domains it does not manage. */
export async function listVms(ctx: VmContext): Promise<VmListing> {
  const rows = await listVmRows(ctx.db);
  const live = new Map<string, string>();
  const unmanaged: { hypervisor: string; name: string; state: string }[] = [];
  const known = new Set(rows.map((r) => `${r.hypervisor}/${r.name}`));
  await Promise.all(
    (await listHypervisors(ctx.db)).map(async (hv) => {
      try {
        await ctx.pool.use(hv.uri, async (client) => {
          for (const dom of await client.listAllDomains()) {
            const state = (await client.getDomainState(dom)).state;
            if (known.has(`${hv.name}/${dom.name}`)) live.set(`${hv.name}/${dom.name}`, state);
            else unmanaged.push({ hypervisor: hv.name, name: dom.name, state });
          }
        });
      } catch {
        /* an unreachable hypervisor: its VMs show their last known state */
      }
    }),
  );
  return {
    vms: rows.map((r) => ({
      ...r,
      state: live.get(`${r.hypervisor}/${r.name}`) ?? r.state,
      live: live.has(`${r.hypervisor}/${r.name}`),
    })),
    unmanaged,
  };
}
