/**
 * The `virt-install` job: a new domain from a spec — a new qcow2 disk in the hypervisor's pool (or an
 * imported disk), its install source (PXE, a CD-ROM, none), its bridge and a MAC — on a hypervisor
 * named or placed in a site; defined, started, and only then recorded. defineAndStart is shared with
 * clones: a KVM guest that cannot start on KVM itself is started as TCG and the hypervisor remembered
 * as such.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { LibvirtClient } from '../protocols/libvirt/remote.ts';
import type { RemoteDomain } from '../protocols/libvirt/types.ts';
import type { Database } from '../store/schema.ts';
import { place } from './capacity.ts';
import { isKvmUnavailable } from './domain-type.ts';
import { domainXml, volumeXml, type DiskSpec, type DomainSpec } from './domain-xml.ts';
import { refreshState } from './lifecycle.ts';
import { storagePool, withHypervisor, type HypervisorRow, type VmContext } from './on-hypervisor.ts';
import { assertNameFree, checkName, insertVm, type Vm } from './vm-rows.ts';

const MiB = 1024 * 1024;

export type InstallSource =
  | { readonly kind: 'pxe' }
  | { readonly kind: 'cdrom'; readonly iso: string }
  | { readonly kind: 'import'; readonly disk: string }
  | { readonly kind: 'none' };

export interface CreateVmInput {
  readonly name: string;
  /** A hypervisor by name, or a site to place in. */
  readonly hypervisor?: string;
  readonly site?: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** New qcow2 disk in the hypervisor's pool (ignored for kind "import"). */
  readonly diskGiB?: number;
  readonly source: InstallSource;
  readonly osVariant?: string;
  readonly bridge?: string;
  readonly mac?: string;
  readonly graphics?: DomainSpec['graphics'];
  readonly directBoot?: DomainSpec['directBoot'];
  /** 'pty' (virsh console) by default; a file for unattended logs. */
  readonly serial?: DomainSpec['serial'];
  readonly autostart?: boolean;
  readonly start?: boolean;
  readonly antiAffinity?: string;
}

/** A locally administered MAC in QEMU's 52:54:00 range. */
export function randomMac(): string {
  return ['52', '54', '00', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Defines (and starts) a domain; a KVM start that fails on KVM itself is retried as TCG and the hypervisor remembered as such. */
export async function defineAndStart(
  db: Kysely<Database>,
  client: LibvirtClient,
  hv: HypervisorRow,
  spec: DomainSpec,
  start: boolean,
  autostart: boolean,
): Promise<DomainSpec> {
  let dom: RemoteDomain = await client.defineDomainXml(domainXml(spec));
  if (autostart) await client.setDomainAutostart(dom, true);
  if (!start) return spec;
  try {
    await client.startDomain(dom);
    return spec;
  } catch (error) {
    if (spec.type !== 'kvm' || !isKvmUnavailable((error as Error).message)) throw error;
    const tcg: DomainSpec = { ...spec, type: 'qemu' };
    dom = await client.defineDomainXml(domainXml(tcg));
    await client.startDomain(dom);
    await db.updateTable('hypervisors').set({ domain_type: 'qemu' }).where('id', '=', hv.id).execute();
    return tcg;
  }
}

/** The `virt-install` job: a new domain with a new qcow2 disk (or an imported one), its install source and network. */
export async function createVm(ctx: VmContext, input: CreateVmInput): Promise<Vm> {
  checkName(input.name, 'VM');
  if (!Number.isInteger(input.memoryMiB) || input.memoryMiB < 16)
    throw new KvmfleetError(ErrorCode.Validation, 'memoryMiB must be a whole number ≥ 16');
  if (!Number.isInteger(input.vcpus) || input.vcpus < 1)
    throw new KvmfleetError(ErrorCode.Validation, 'vcpus must be a whole number ≥ 1');
  if (input.source.kind !== 'import' && input.source.kind !== 'none' && !(input.diskGiB && input.diskGiB > 0))
    throw new KvmfleetError(ErrorCode.Validation, 'diskGiB must be > 0 for a new disk');
  await assertNameFree(ctx.db, input.name);
  const hypervisor =
    input.hypervisor ??
    (input.site
      ? (
          await place(ctx.db, ctx.policy, input.site, [
            { memoryMiB: input.memoryMiB, vcpus: input.vcpus, antiAffinity: input.antiAffinity },
          ])
        )[0]!
      : undefined);
  if (!hypervisor) throw new KvmfleetError(ErrorCode.Validation, 'name a hypervisor or a site to place the VM in');
  const uuid = randomUUID();
  const mac = input.mac ?? randomMac();
  return withHypervisor(ctx, hypervisor, `create VM ${input.name}`, async (client, hv) => {
    await ctx.watch(hv);
    let diskPath: string | null = null;
    const disks: DiskSpec[] = [];
    if (input.source.kind === 'import') {
      diskPath = input.source.disk;
      disks.push({ source: diskPath, format: diskPath.endsWith('.qcow2') ? 'qcow2' : 'raw' });
    } else if (input.diskGiB) {
      const pool = await storagePool(client, hv);
      const volume = await client.createVolume(
        pool,
        volumeXml({
          name: `${input.name}.qcow2`,
          capacityBytes: Math.round(input.diskGiB * 1024 * MiB),
          format: 'qcow2',
        }),
      );
      diskPath = await client.getVolumePath(volume);
      disks.push({ source: diskPath, format: 'qcow2' });
    }
    if (input.source.kind === 'cdrom') disks.push({ source: input.source.iso, format: 'raw', device: 'cdrom' });
    const bootOrder: DomainSpec['bootOrder'] =
      input.source.kind === 'pxe'
        ? [...(disks.length ? (['disk:0'] as const) : []), 'net:0']
        : input.source.kind === 'cdrom'
          ? ['disk:0', `disk:${disks.length - 1}`]
          : disks.length
            ? ['disk:0']
            : [];
    const spec: DomainSpec = {
      name: input.name,
      uuid,
      type: hv.domainType ?? 'qemu',
      memoryMiB: input.memoryMiB,
      vcpus: input.vcpus,
      disks,
      interfaces: [{ bridge: input.bridge ?? hv.bridge, mac }],
      bootOrder: input.directBoot ? [] : bootOrder,
      serial: input.serial ?? 'pty',
      ...(input.graphics ? { graphics: input.graphics } : {}),
      ...(input.directBoot ? { directBoot: input.directBoot } : {}),
      description: `kvmfleet VM${input.osVariant ? ` (${input.osVariant})` : ''}`,
    };
    const final = await defineAndStart(ctx.db, client, hv, spec, input.start ?? true, input.autostart ?? false);
    await insertVm(ctx.db, {
      name: input.name,
      hypervisorId: hv.id,
      uuid,
      memoryMiB: input.memoryMiB,
      vcpus: input.vcpus,
      disk: diskPath,
      macs: [mac],
      antiAffinity: input.antiAffinity ?? null,
      spec: final,
    });
    return refreshState(ctx, input.name);
  });
}
