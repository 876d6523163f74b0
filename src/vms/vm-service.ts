/**
 * VMs on the fleet's hypervisors, through libvirt: the `virt-install` job (create), templates sealed
 * with virt-sysprep, linked and full clones with a cloud-init identity each, lifecycle (start, ACPI
 * shutdown with a timeout then optional destroy, destroy, undefine with or without storage,
 * autostart), and listing with states across every hypervisor. The store holds what kvmfleet made;
 * libvirt holds what runs — states are kept current from libvirt's lifecycle events.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { LibvirtPool } from '../protocols/libvirt/pool.ts';
import { UndefineFlags } from '../protocols/libvirt/remote.ts';
import type { CloneKind, Database } from '../store/schema.ts';
import { capacities, place } from './capacity.ts';
import { createVm, defineAndStart, randomMac, type CreateVmInput } from './create.ts';
import {
  deleteTemplate,
  getTemplate,
  listTemplates,
  sealTemplate,
  type Template,
  type TemplateRecord,
} from './templates.ts';
import { seedFiles, type SeedIdentity } from './cloud-init.ts';
import { volumeXml, type DomainSpec } from './domain-xml.ts';
import { getHypervisor } from './hypervisors.ts';
import { DEFAULT_PLACEMENT_POLICY, type HostCapacity, type PlacementPolicy, type VmDemand } from './placement.ts';
import { buildSeedImage } from './seed-image.ts';
import { freeStaticAddress } from '../fleet/addresses.ts';
import {
  destroyVm,
  listVms,
  refreshState,
  setAutostart,
  shutdownVm,
  startVm,
  StateWatch,
  undefineVm,
  type VmListing,
  type VmStateEvent,
} from './lifecycle.ts';
import { storagePool, withHypervisor, type HypervisorRow, type VmContext } from './on-hypervisor.ts';
import {
  checkName,
  deleteVmRow,
  findVmRow,
  finishCloneRow,
  getVm as getVmRow,
  reserveCloneRow,
  type ManagedVm,
  type Vm,
} from './vm-rows.ts';

export type { Vm } from './vm-rows.ts';
export type { Template, TemplateRecord } from './templates.ts';
export { randomMac, type CreateVmInput, type InstallSource } from './create.ts';
export { stateAfterEvent, type VmStateEvent } from './lifecycle.ts';

export interface CloneInput {
  readonly template: string;
  readonly name: string;
  readonly kind: CloneKind;
  readonly hypervisor?: string;
  /** hostname, domain, SSH keys; a static ip (prefix, gateway, dns), or a kvmfleet network to take a free address from; else DHCP. */
  readonly identity?: Omit<SeedIdentity, 'instanceId' | 'hostname' | 'network'> & {
    hostname?: string;
    ip?: string;
    prefix?: number;
    gateway?: string;
    dns?: string[];
    network?: string;
  };
  readonly antiAffinity?: string;
  readonly start?: boolean;
  /** Write the serial console to this directory (default: a pty). */
  readonly serialLogDir?: string;
}

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
    return getVmRow(this.#db, name);
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

  /**
   * Seals a shut-off VM as a template: virt-sysprep on its disk, then the domain is undefined so the
   * disk (the backing file of linked clones) is never written again; its spec is kept to clone from.
   */
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

  /**
   * A clone of a template: a new disk (linked: qcow2 backed by the template's disk; full: an
   * independent copy through the storage API), a NoCloud seed with its own identity (hostname,
   * SSH keys, a static address given or taken from a kvmfleet network, else DHCP), new name, UUID
   * and MAC. On another hypervisor than the template's, the template's volume must be there too
   * (same name in its pool). A clone that fails leaves no row behind.
   */
  async clone(input: CloneInput): Promise<Vm> {
    checkName(input.name, 'VM');
    if (input.kind !== 'linked' && input.kind !== 'full')
      throw new KvmfleetError(ErrorCode.Validation, 'a clone is "linked" or "full"');
    if (input.identity?.ip && input.identity.network)
      throw new KvmfleetError(ErrorCode.Validation, 'give an address or a network to take one from, not both');
    const template = await this.getTemplate(input.template);
    const existingTemplate = await this.#db
      .selectFrom('templates')
      .select('id')
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (existingTemplate) throw new KvmfleetError(ErrorCode.AlreadyExists, `a template "${input.name}" already exists`);
    const hv = await getHypervisor(this.#db, input.hypervisor ?? template.hypervisor);
    const uuid = randomUUID();
    const mac = randomMac();
    const network = input.identity?.network;
    const reserved = await reserveCloneRow(
      this.#db,
      {
        name: input.name,
        hypervisorId: hv.id,
        uuid,
        mac,
        template,
        kind: input.kind,
        antiAffinity: input.antiAffinity ?? null,
      },
      network ? () => freeStaticAddress(this.#db, network) : undefined,
    );
    try {
      const address = reserved.address
        ? {
            ip: reserved.address.ip,
            prefix: reserved.address.prefix,
            gateway: reserved.address.gateway ?? undefined,
            dns: reserved.address.dns,
          }
        : input.identity?.ip
          ? {
              ip: input.identity.ip,
              prefix: input.identity.prefix ?? 24,
              gateway: input.identity.gateway,
              dns: input.identity.dns ?? [],
            }
          : undefined;
      const files = seedFiles({
        instanceId: uuid,
        hostname: input.identity?.hostname ?? input.name.split('.')[0]!.toLowerCase(),
        domain: input.identity?.domain ?? (reserved.address?.domain || undefined),
        sshKeys: input.identity?.sshKeys ?? [],
        network: { mac, ...(address ? { address } : {}) },
      });
      const seed = await buildSeedImage(files);
      const templateVolumeName = template.disk.split('/').at(-1)!;
      const made = await withHypervisor(this.#ctx, hv.name, `clone ${input.name}`, async (client, hvFull) => {
        await this.watch(hvFull);
        const pool = await storagePool(client, hvFull);
        const base = await client.lookupVolume(pool, templateVolumeName).catch(() => {
          throw new KvmfleetError(
            ErrorCode.Validation,
            `template "${template.name}" has no volume ${templateVolumeName} in pool ${hvFull.storagePool} on ${hvFull.name}`,
          );
        });
        const basePath = await client.getVolumePath(base);
        const capacity = (await client.getVolumeInfo(base)).capacity;
        const diskVolume = { name: `${input.name}.qcow2`, capacityBytes: capacity, format: 'qcow2' } as const;
        const disk =
          input.kind === 'linked'
            ? await client.createVolume(
                pool,
                volumeXml({ ...diskVolume, backingStore: { path: basePath, format: 'qcow2' } }),
              )
            : await client.cloneVolume(pool, volumeXml(diskVolume), base);
        const diskPath = await client.getVolumePath(disk);
        const seedVolume = await client.createVolume(
          pool,
          volumeXml({ name: `${input.name}-seed.img`, capacityBytes: seed.length, format: 'raw' }),
        );
        await client.uploadVolume(seedVolume, seed);
        const seedPath = await client.getVolumePath(seedVolume);
        const spec: DomainSpec = {
          ...template.spec,
          name: input.name,
          uuid,
          type: hvFull.domainType ?? template.spec.type,
          disks: [
            { source: diskPath, format: 'qcow2' },
            { source: seedPath, format: 'raw', readonly: true },
          ],
          interfaces: [{ ...(template.spec.interfaces?.[0] ?? {}), bridge: hvFull.bridge, mac }],
          serial: input.serialLogDir ? { file: `${input.serialLogDir}/${input.name}.serial.log` } : 'pty',
          description: `kvmfleet ${input.kind} clone of ${template.name}`,
        };
        const final = await defineAndStart(this.#db, client, hvFull, spec, input.start ?? false, false);
        return { diskPath, seedPath, spec: final };
      });
      await finishCloneRow(this.#db, reserved.id, made);
    } catch (error) {
      // Nothing half-made stays behind: the domain and volumes this clone may have made go with its row.
      await this.#discardOnHypervisor(input.name, hv.name).catch(() => undefined);
      await deleteVmRow(this.#db, reserved.id);
      throw error;
    }
    return refreshState(this.#ctx, input.name);
  }

  /**
   * For a job resuming an item whose outcome it never recorded (its worker died): "complete" when
   * the clone was finished (its row is no longer provisioning and its domain exists), else whatever
   * it left — domain, disk, seed, the reserved row — is removed and the item can be made again.
   */
  async recoverClone(name: string, hypervisor: string): Promise<'complete' | 'absent'> {
    const row = await findVmRow(this.#db, name);
    if (row && row.state !== 'provisioning') {
      const defined = await withHypervisor(this.#ctx, hypervisor, `look up ${name}`, async (client) =>
        client.lookupDomainByName(name).then(
          () => true,
          () => false,
        ),
      );
      if (defined) return 'complete';
    }
    await this.#discardOnHypervisor(name, hypervisor);
    if (row) await deleteVmRow(this.#db, row.id);
    return 'absent';
  }

  /** Destroys and undefines the domain `name` and deletes its clone volumes on `hypervisor`, whichever exist. */
  async #discardOnHypervisor(name: string, hypervisor: string): Promise<void> {
    await withHypervisor(this.#ctx, hypervisor, `clean up ${name}`, async (client, hv) => {
      const dom = await client.lookupDomainByName(name).catch(() => undefined);
      if (dom) {
        await client.destroyDomain(dom).catch(() => undefined);
        await client.undefineDomain(dom, UndefineFlags.Nvram).catch(() => undefined);
      }
      const pool = await client.lookupStoragePool(hv.storagePool).catch(() => undefined);
      if (!pool) return;
      for (const volume of [`${name}.qcow2`, `${name}-seed.img`]) {
        const found = await client.lookupVolume(pool, volume).catch(() => undefined);
        if (found) await client.deleteVolume(found).catch(() => undefined);
      }
    });
  }
}
