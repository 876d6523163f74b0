/**
 * VMs on the fleet's hypervisors, through libvirt, as one service for the API, the job runner and the
 * CLI: a facade over the capability modules, each in its own file — create.ts (the `virt-install`
 * job), lifecycle.ts (start, shutdown, destroy, autostart, undefine, states from libvirt's events,
 * listing), templates.ts (sealing with virt-sysprep, template rows), clone.ts (linked and full clones
 * with a cloud-init identity), capacity.ts (placement), with vm-rows.ts for the store's VM rows and
 * on-hypervisor.ts for reaching a hypervisor. It holds what they share and emits each state change.
 */
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import type { LibvirtPool } from '../protocols/libvirt/pool.ts';
import type { Database } from '../store/schema.ts';
import { capacities, place } from './capacity.ts';
import { cloneVm, recoverClone, type CloneInput } from './clone.ts';
import { createVm, type CreateVmInput } from './create.ts';
import {
  destroyVm,
  listVms,
  setAutostart,
  shutdownVm,
  startVm,
  StateWatch,
  undefineVm,
  type VmListing,
  type VmStateEvent,
} from './lifecycle.ts';
import type { HypervisorRow, VmContext } from './on-hypervisor.ts';
import { DEFAULT_PLACEMENT_POLICY, type HostCapacity, type PlacementPolicy, type VmDemand } from './placement.ts';
import {
  deleteTemplate,
  getTemplate,
  listTemplates,
  sealTemplate,
  type Template,
  type TemplateRecord,
} from './templates.ts';
import { getVm, type ManagedVm, type Vm } from './vm-rows.ts';

export type { ManagedVm, Vm } from './vm-rows.ts';
export type { CloneInput } from './clone.ts';
export type { Template, TemplateRecord } from './templates.ts';
export { randomMac, type CreateVmInput, type InstallSource } from './create.ts';
export { stateAfterEvent, type VmListing, type VmStateEvent } from './lifecycle.ts';

export class VmService extends EventEmitter<{ state: [VmStateEvent] }> {
  readonly #db: Kysely<Database>;
  readonly #states: StateWatch;
  readonly #policy: PlacementPolicy;
  readonly #ctx: VmContext;

  constructor(db: Kysely<Database>, pool: LibvirtPool, policy: PlacementPolicy = DEFAULT_PLACEMENT_POLICY) {
    super();
    this.#db = db;
    this.#policy = policy;
    this.#states = new StateWatch(db, pool, (event) => this.emit('state', event));
    this.#ctx = { db, pool, policy, watch: (hv) => this.#states.watch(hv) };
  }

  /** Keeps VM states current from the hypervisor's lifecycle events (once per hypervisor). */
  watch(hv: HypervisorRow): Promise<void> {
    return this.#states.watch(hv);
  }

  getVm(name: string): Promise<ManagedVm> {
    return getVm(this.#db, name);
  }

  /** What the placement rule sees: each hypervisor's capacity and what kvmfleet put on it. */
  capacities(site: string, only?: readonly string[]): Promise<HostCapacity[]> {
    return capacities(this.#db, site, only);
  }

  /** Chooses hypervisors for demands in a site (see placement.ts). */
  place(site: string, demands: readonly VmDemand[], only?: readonly string[]): Promise<string[]> {
    return place(this.#db, this.#policy, site, demands, only);
  }

  /** The `virt-install` job: a new domain with a new qcow2 disk (or an imported one), its install source and network. */
  create(input: CreateVmInput): Promise<Vm> {
    return createVm(this.#ctx, input);
  }

  start(name: string): Promise<Vm> {
    return startVm(this.#ctx, name);
  }

  /** ACPI shutdown; after `timeoutS` still running: destroyed when `force`, else an error. */
  shutdown(name: string, options: { timeoutS?: number; force?: boolean } = {}): Promise<Vm & { forced: boolean }> {
    return shutdownVm(this.#ctx, name, options);
  }

  destroy(name: string): Promise<Vm> {
    return destroyVm(this.#ctx, name);
  }

  setAutostart(name: string, on: boolean): Promise<void> {
    return setAutostart(this.#ctx, name, on);
  }

  /** Removes the definition (a running VM is refused); with storage, its disk and seed volumes too. */
  undefine(name: string, options: { removeStorage?: boolean } = {}): Promise<void> {
    return undefineVm(this.#ctx, name, options);
  }

  /** Every VM kvmfleet manages, with its live state where its hypervisor answers; plus domains it does not manage. */
  list(): Promise<VmListing> {
    return listVms(this.#ctx);
  }

  // ── templates ────────────────────────────────────────────────────────────────

  /** Seals a shut-off VM as a template with virt-sysprep (templates.ts). */
  sealTemplate(vmName: string, templateName = vmName): Promise<Template> {
    return sealTemplate(this.#ctx, vmName, templateName);
  }

  getTemplate(name: string): Promise<TemplateRecord> {
    return getTemplate(this.#db, name);
  }

  listTemplates(): Promise<Template[]> {
    return listTemplates(this.#db);
  }

  /** A template with linked clones cannot go: their disks read through its disk. */
  deleteTemplate(name: string, options: { removeStorage?: boolean } = {}): Promise<void> {
    return deleteTemplate(this.#ctx, name, options);
  }

  // ── clones ───────────────────────────────────────────────────────────────────

  /** A linked or full clone of a template with its own cloud-init identity (clone.ts); a failed one leaves nothing. */
  clone(input: CloneInput): Promise<Vm> {
    return cloneVm(this.#ctx, input);
  }

  /** What a clone whose outcome a job never recorded left: "complete", or removed and "absent" (clone.ts). */
  recoverClone(name: string, hypervisor: string): Promise<'complete' | 'absent'> {
    return recoverClone(this.#ctx, name, hypervisor);
  }
}
