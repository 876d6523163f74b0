/**
 * Templates: a shut-off VM sealed with virt-sysprep (machine identity, SSH host keys, logs removed)
 * becomes a template row with the domain spec to clone from; its domain is undefined so its disk — the
 * backing file of linked clones — is never written again. A template with linked clones cannot be
 * deleted: their disks read through its disk.
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { UndefineFlags } from '../protocols/libvirt/remote.ts';
import { parseLibvirtUri } from '../protocols/libvirt/uri.ts';
import type { Database } from '../store/schema.ts';
import type { DomainSpec } from './domain-xml.ts';
import { getHypervisor } from './hypervisors.ts';
import { storagePool, withHypervisor, type VmContext } from './on-hypervisor.ts';
import { readDomainSpec } from './stored-spec.ts';
import { HypervisorLostError, sysprepDisk } from './sysprep.ts';
import { checkName, deleteVmRow, detachFromTemplate, getVm, storedVmSpec } from './vm-rows.ts';

export interface Template {
  readonly name: string;
  readonly hypervisor: string;
  readonly disk: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly operations: string[];
  readonly sealedAt: string;
  readonly linkedClones: number;
}

/** A template with what cloning needs beyond the API shape. */
export type TemplateRecord = Template & { id: number; spec: DomainSpec; hypervisorId: number };

/**
 * Seals a shut-off VM as a template: virt-sysprep on its disk, then the domain is undefined so the
 * disk (the backing file of linked clones) is never written again; its spec is kept to clone from.
 */
export async function sealTemplate(ctx: VmContext, vmName: string, templateName = vmName): Promise<Template> {
  checkName(templateName, 'template');
  const vm = await getVm(ctx.db, vmName);
  if (!vm.disk) throw new KvmfleetError(ErrorCode.Validation, `${vmName} has no disk to make a template of`);
  const hv = await getHypervisor(ctx.db, vm.hypervisor);
  const spec = await withHypervisor(ctx, vm.hypervisor, `seal ${vmName}`, async (client) => {
    const dom = await client.lookupDomainByName(vmName);
    const state = (await client.getDomainState(dom)).state;
    if (state !== 'shutoff')
      throw new KvmfleetError(ErrorCode.VmRunning, `${vmName} is ${state}: only a shut-off VM can be sealed`);
    return storedVmSpec(ctx.db, vm.id);
  }).then((stored) => readDomainSpec(stored, `VM "${vmName}"`));
  let sealed;
  try {
    sealed = await sysprepDisk(parseLibvirtUri(hv.uri), vm.disk, { tcg: hv.domainType !== 'kvm' });
  } catch (error) {
    const lost = error instanceof HypervisorLostError;
    throw new KvmfleetError(
      lost ? ErrorCode.HypervisorUnavailable : ErrorCode.Internal,
      `sealing ${vmName}: ${(error as Error).message}`,
    );
  }
  await withHypervisor(ctx, vm.hypervisor, `undefine ${vmName}`, async (client) =>
    client.undefineDomain(await client.lookupDomainByName(vmName), UndefineFlags.Nvram),
  );
  const templateSpec: DomainSpec = { ...spec, name: templateName };
  await ctx.db.transaction().execute(async (trx) => {
    await deleteVmRow(trx, vm.id);
    await trx
      .insertInto('templates')
      .values({
        name: templateName,
        hypervisor_id: hv.id,
        disk_path: vm.disk!,
        memory_mib: vm.memoryMiB,
        vcpus: vm.vcpus,
        domain_spec: JSON.stringify(templateSpec),
        operations: JSON.stringify(sealed.operations),
      })
      .execute();
  });
  return getTemplate(ctx.db, templateName);
}

export async function getTemplate(db: Kysely<Database>, name: string): Promise<TemplateRecord> {
  const row = await db
    .selectFrom('templates')
    .innerJoin('hypervisors', 'hypervisors.id', 'templates.hypervisor_id')
    .selectAll('templates')
    .select([
      'hypervisors.name as hypervisor',
      (eb) =>
        eb
          .selectFrom('vms')
          .select(eb.fn.countAll<number>().as('n'))
          .whereRef('vms.template_id', '=', 'templates.id')
          .where('vms.clone_kind', '=', 'linked')
          .as('linked'),
    ])
    .where('templates.name', '=', name)
    .executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `template "${name}" does not exist`);
  return {
    id: row.id,
    name: row.name,
    hypervisor: row.hypervisor,
    hypervisorId: row.hypervisor_id,
    disk: row.disk_path,
    memoryMiB: row.memory_mib,
    vcpus: row.vcpus,
    operations: row.operations,
    sealedAt: new Date(row.sealed_at).toISOString(),
    linkedClones: Number(row.linked ?? 0),
    spec: readDomainSpec(row.domain_spec, `template "${name}"`),
  };
}

export async function templateExists(db: Kysely<Database>, name: string): Promise<boolean> {
  return (await db.selectFrom('templates').select('id').where('name', '=', name).executeTakeFirst()) !== undefined;
}

export async function listTemplates(db: Kysely<Database>): Promise<Template[]> {
  const names = await db.selectFrom('templates').select('name').orderBy('name').execute();
  return Promise.all(
    names.map(async (n) => {
      const { id: _id, spec: _spec, hypervisorId: _h, ...template } = await getTemplate(db, n.name);
      return template;
    }),
  );
}

/** A template with linked clones cannot go: their disks read through its disk. */
export async function deleteTemplate(
  ctx: VmContext,
  name: string,
  options: { removeStorage?: boolean } = {},
): Promise<void> {
  const template = await getTemplate(ctx.db, name);
  if (template.linkedClones > 0)
    throw new KvmfleetError(
      ErrorCode.InUse,
      `template "${name}" has ${template.linkedClones} linked clones whose disks are backed by it`,
    );
  if (options.removeStorage) {
    await withHypervisor(ctx, template.hypervisor, `delete template ${name}`, async (client, hv) => {
      const pool = await storagePool(client, hv);
      const volume = await client.lookupVolume(pool, template.disk.split('/').at(-1)!).catch(() => undefined);
      if (volume) await client.deleteVolume(volume);
    });
  }
  await detachFromTemplate(ctx.db, template.id);
  await ctx.db.deleteFrom('templates').where('id', '=', template.id).execute();
}
