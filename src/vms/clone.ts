/**
 * Clones of a template: a new disk (linked: qcow2 over the template's disk; full: an independent copy
 * through the storage API), a NoCloud seed with the clone's own identity (hostname, SSH keys, a static
 * address given or taken from a kvmfleet network, else DHCP), a new name, UUID and MAC. The row is
 * reserved before any libvirt work and removed with whatever was made when the clone fails; a job
 * resuming after a worker died asks recoverClone what an unrecorded clone left.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { freeStaticAddress } from '../fleet/addresses.ts';
import { UndefineFlags } from '../protocols/libvirt/remote.ts';
import type { CloneKind } from '../store/schema.ts';
import { seedFiles, type SeedIdentity } from './cloud-init.ts';
import { defineAndStart, randomMac } from './create.ts';
import { volumeXml, type DomainSpec } from './domain-xml.ts';
import { getHypervisor } from './hypervisors.ts';
import { refreshState } from './lifecycle.ts';
import { storagePool, withHypervisor, type VmContext } from './on-hypervisor.ts';
import { buildSeedImage } from './seed-image.ts';
import { getTemplate, templateExists } from './templates.ts';
import { checkName, deleteVmRow, findVmRow, finishCloneRow, reserveCloneRow, type Vm } from './vm-rows.ts';

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

/**
 * A clone of a template: a new disk (linked: qcow2 backed by the template's disk; full: an
 * independent copy through the storage API), a NoCloud seed with its own identity (hostname,
 * SSH keys, a static address given or taken from a kvmfleet network, else DHCP), new name, UUID
 * and MAC. On another hypervisor than the template's, the template's volume must be there too
 * (same name in its pool). A clone that fails leaves no row behind.
 */
export async function cloneVm(ctx: VmContext, input: CloneInput): Promise<Vm> {
  checkName(input.name, 'VM');
  if (input.kind !== 'linked' && input.kind !== 'full')
    throw new KvmfleetError(ErrorCode.Validation, 'a clone is "linked" or "full"');
  if (input.identity?.ip && input.identity.network)
    throw new KvmfleetError(ErrorCode.Validation, 'give an address or a network to take one from, not both');
  const template = await getTemplate(ctx.db, input.template);
  if (await templateExists(ctx.db, input.name))
    throw new KvmfleetError(ErrorCode.AlreadyExists, `a template "${input.name}" already exists`);
  const hv = await getHypervisor(ctx.db, input.hypervisor ?? template.hypervisor);
  const uuid = randomUUID();
  const mac = randomMac();
  const network = input.identity?.network;
  const reserved = await reserveCloneRow(
    ctx.db,
    {
      name: input.name,
      hypervisorId: hv.id,
      uuid,
      mac,
      template,
      kind: input.kind,
      antiAffinity: input.antiAffinity ?? null,
    },
    network ? () => freeStaticAddress(ctx.db, network) : undefined,
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
    const made = await withHypervisor(ctx, hv.name, `clone ${input.name}`, async (client, hvFull) => {
      await ctx.watch(hvFull);
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
      const final = await defineAndStart(ctx.db, client, hvFull, spec, input.start ?? false, false);
      return { diskPath, seedPath, spec: final };
    });
    await finishCloneRow(ctx.db, reserved.id, made);
  } catch (error) {
    // Nothing half-made stays behind: the domain and volumes this clone may have made go with its row.
    await discardOnHypervisor(ctx, input.name, hv.name).catch(() => undefined);
    await deleteVmRow(ctx.db, reserved.id);
    throw error;
  }
  return refreshState(ctx, input.name);
}

/**
 * For a job resuming an item whose outcome it never recorded (its worker died): "complete" when
 * the clone was finished (its row is no longer provisioning and its domain exists), else whatever
 * it left — domain, disk, seed, the reserved row — is removed and the item can be made again.
 */
export async function recoverClone(ctx: VmContext, name: string, hypervisor: string): Promise<'complete' | 'absent'> {
  const row = await findVmRow(ctx.db, name);
  if (row && row.state !== 'provisioning') {
    const defined = await withHypervisor(ctx, hypervisor, `look up ${name}`, async (client) =>
      client.lookupDomainByName(name).then(
        () => true,
        () => false,
      ),
    );
    if (defined) return 'complete';
  }
  await discardOnHypervisor(ctx, name, hypervisor);
  if (row) await deleteVmRow(ctx.db, row.id);
  return 'absent';
}

/** Destroys and undefines the domain `name` and deletes its clone volumes on `hypervisor`, whichever exist. */
async function discardOnHypervisor(ctx: VmContext, name: string, hypervisor: string): Promise<void> {
  await withHypervisor(ctx, hypervisor, `clean up ${name}`, async (client, hv) => {
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
