/**
 * The store's VM rows: the one place that reads and writes `vms` for the VM modules, and the row → API
 * shape (`Vm`). A created VM's row is written once it is defined; a clone's row is reserved first
 * (state "provisioning", with its static address) so two clones can never take one name or address,
 * and filled in when it is made. Names follow RE.vmName for VMs and templates alike.
 */
import type { Selectable } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { StaticAddress } from '../fleet/addresses.ts';
import { RE } from '../fleet/validate-names.ts';
import { uniqueViolation } from '../store/constraint.ts';
import type { CloneKind, Database } from '../store/schema.ts';
import type { Db } from '../store/tx.ts';
import type { DomainSpec } from './domain-xml.ts';

export interface Vm {
  readonly name: string;
  readonly hypervisor: string;
  readonly uuid: string;
  readonly state: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly template: string | null;
  readonly cloneKind: CloneKind | null;
  readonly disk: string | null;
  readonly macs: string[];
  readonly antiAffinity: string | null;
  /** A static address from a kvmfleet network, if it was given one. */
  readonly ip: string | null;
}

/** A VM with what the modules need of its row beyond the API shape. */
export type ManagedVm = Vm & { id: number; hypervisorId: number; seedPath: string | null };

/** An address clash is retried with a fresh address this many times before the error is given up. */
const ADDRESS_RETRIES = 20;

export function checkName(name: string, what: string): void {
  if (!RE.vmName.test(name ?? ''))
    throw new KvmfleetError(
      ErrorCode.Validation,
      `${what} name "${name}" must be 1–64 letters, digits, ".", "_" or "-"`,
    );
}

type VmRow = Selectable<Database['vms']> & { hypervisor: string; template: string | null };

function toVm(row: VmRow): Vm {
  return {
    name: row.name,
    hypervisor: row.hypervisor,
    uuid: row.uuid,
    state: row.state,
    memoryMiB: row.memory_mib,
    vcpus: row.vcpus,
    template: row.template,
    cloneKind: row.clone_kind,
    disk: row.disk_path,
    macs: row.macs,
    antiAffinity: row.anti_affinity,
    ip: row.ip ? row.ip.replace(/\/32$/, '') : null,
  };
}

function selectVms(db: Db) {
  return db
    .selectFrom('vms')
    .innerJoin('hypervisors', 'hypervisors.id', 'vms.hypervisor_id')
    .leftJoin('templates', 'templates.id', 'vms.template_id')
    .selectAll('vms')
    .select(['hypervisors.name as hypervisor', 'templates.name as template']);
}

export async function getVm(db: Db, name: string): Promise<ManagedVm> {
  const row = await selectVms(db).where('vms.name', '=', name).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `VM "${name}" does not exist`);
  return { ...toVm(row), id: row.id, hypervisorId: row.hypervisor_id, seedPath: row.seed_path };
}

/** Every VM row, by name, with its last known state. */
export async function listVmRows(db: Db): Promise<Vm[]> {
  return (await selectVms(db).orderBy('vms.name').execute()).map(toVm);
}

/** The id and state of VM `name`'s row, if there is one. */
export function findVmRow(db: Db, name: string): Promise<{ id: number; state: string } | undefined> {
  return db.selectFrom('vms').select(['id', 'state']).where('name', '=', name).executeTakeFirst();
}

export async function assertNameFree(db: Db, name: string): Promise<void> {
  const vm = await db.selectFrom('vms').select('id').where('name', '=', name).executeTakeFirst();
  const template = await db.selectFrom('templates').select('id').where('name', '=', name).executeTakeFirst();
  if (vm || template) throw new KvmfleetError(ErrorCode.AlreadyExists, `a VM or template "${name}" already exists`);
}

export interface NewVmRow {
  readonly name: string;
  readonly hypervisorId: number;
  readonly uuid: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly disk: string | null;
  readonly macs: readonly string[];
  readonly antiAffinity: string | null;
  readonly spec: DomainSpec;
}

/** The row of a VM that is defined (create). */
export async function insertVm(db: Db, values: NewVmRow): Promise<void> {
  await db
    .insertInto('vms')
    .values({
      name: values.name,
      hypervisor_id: values.hypervisorId,
      uuid: values.uuid,
      memory_mib: values.memoryMiB,
      vcpus: values.vcpus,
      template_id: null,
      clone_kind: null,
      disk_path: values.disk,
      seed_path: null,
      macs: JSON.stringify(values.macs),
      anti_affinity: values.antiAffinity,
      domain_spec: JSON.stringify(values.spec),
    })
    .execute();
}

export interface CloneReservation {
  readonly name: string;
  readonly hypervisorId: number;
  readonly uuid: string;
  readonly mac: string;
  readonly template: { readonly id: number; readonly memoryMiB: number; readonly vcpus: number };
  readonly kind: CloneKind;
  readonly antiAffinity: string | null;
}

/**
 * Reserves a clone's row (and its address from `takeAddress`, when it gets one) before any libvirt
 * work, so two clones can never take one name or one address — on one kvmfleet node or several on one
 * PostgreSQL: the store's unique constraints decide. A taken name is AlreadyExists; a taken address
 * (another clone took it meanwhile) is asked for again.
 */
export async function reserveCloneRow(
  db: Db,
  values: CloneReservation,
  takeAddress?: () => Promise<StaticAddress>,
): Promise<{ id: number; address?: StaticAddress }> {
  for (let attempt = 0; ; attempt++) {
    const address = takeAddress ? await takeAddress() : undefined;
    try {
      const row = await db
        .insertInto('vms')
        .values({
          name: values.name,
          hypervisor_id: values.hypervisorId,
          uuid: values.uuid,
          memory_mib: values.template.memoryMiB,
          vcpus: values.template.vcpus,
          state: 'provisioning',
          template_id: values.template.id,
          clone_kind: values.kind,
          disk_path: null,
          seed_path: null,
          macs: JSON.stringify([values.mac]),
          anti_affinity: values.antiAffinity,
          domain_spec: '{}',
          network_id: address?.networkId ?? null,
          ip: address?.ip ?? null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { id: row.id, ...(address ? { address } : {}) };
    } catch (error) {
      if (uniqueViolation(error, 'vms_name_key'))
        throw new KvmfleetError(ErrorCode.AlreadyExists, `a VM "${values.name}" already exists`);
      if (uniqueViolation(error, 'vms_ip_key') && attempt < ADDRESS_RETRIES) continue;
      throw error;
    }
  }
}

/** A reserved clone made: its disk, seed and the spec it was defined with; shut off until started. */
export async function finishCloneRow(
  db: Db,
  id: number,
  made: { readonly diskPath: string; readonly seedPath: string; readonly spec: DomainSpec },
): Promise<void> {
  await db
    .updateTable('vms')
    .set({
      disk_path: made.diskPath,
      seed_path: made.seedPath,
      domain_spec: JSON.stringify(made.spec),
      state: 'shutoff',
      updated_at: new Date().toISOString(),
    })
    .where('id', '=', id)
    .execute();
}

/** The state libvirt reported, by row id or by name on a hypervisor (a lifecycle event names its domain). */
export async function setVmState(
  db: Db,
  which: { readonly id: number } | { readonly name: string; readonly hypervisorId: number },
  state: string,
): Promise<void> {
  let update = db.updateTable('vms').set({ state, updated_at: new Date().toISOString() });
  update =
    'id' in which
      ? update.where('id', '=', which.id)
      : update.where('name', '=', which.name).where('hypervisor_id', '=', which.hypervisorId);
  await update.execute();
}

/** The domain spec a VM's row keeps, as stored (read it with readDomainSpec). */
export async function storedVmSpec(db: Db, id: number): Promise<Record<string, unknown>> {
  return (await db.selectFrom('vms').select('domain_spec').where('id', '=', id).executeTakeFirstOrThrow()).domain_spec;
}

/** A template about to go: its (full) clones keep their rows but no longer name it. */
export async function detachFromTemplate(db: Db, templateId: number): Promise<void> {
  await db.updateTable('vms').set({ template_id: null }).where('template_id', '=', templateId).execute();
}

export async function deleteVmRow(db: Db, id: number): Promise<void> {
  await db.deleteFrom('vms').where('id', '=', id).execute();
}
