/**
 * Hypervisors: registered by libvirt URI in a site; their capacity (CPUs, memory, storage pool) is
 * read from libvirt, with their health (up when the last check reached them). The domain type is
 * chosen once: "kvm" when the capabilities offer it and a KVM guest can really start, else "qemu".
 */
import type { Insertable, Kysely, Selectable } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { siteIdOf } from '../fleet/sites.ts';
import { RE } from '../fleet/validate-names.ts';
import type { LibvirtPool } from '../protocols/libvirt/pool.ts';
import type { LibvirtClient } from '../protocols/libvirt/remote.ts';
import { parseLibvirtUri } from '../protocols/libvirt/uri.ts';
import type { Database } from '../store/schema.ts';
import { uniqueViolation } from '../store/constraint.ts';
import { domainTypesFor, type DomainType } from './domain-type.ts';
import { decideDomainType, observeKvm, type ProbeOptions, type ProbeVerdict } from './kvm-probe.ts';

export interface Hypervisor {
  readonly name: string;
  readonly uri: string;
  readonly site: string;
  readonly storagePool: string;
  readonly bridge: string;
  readonly maxParallel: number;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly poolCapacityBytes: number | null;
  readonly poolAvailableBytes: number | null;
  readonly domainType: DomainType | null;
  /** What the KVM probe saw (or that the operator fixed the type). */
  readonly domainTypeReason: string | null;
  readonly probedAt: string | null;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string | null;
  readonly checkedAt: string | null;
}

export interface HypervisorInput {
  readonly name: string;
  readonly uri: string;
  readonly site: string;
  readonly storagePool?: string;
  readonly bridge?: string;
  readonly maxParallel?: number;
  /** auto: probe (kvm only if a KVM guest is seen to run code, else qemu); or fixed by the operator. */
  readonly domainType?: 'auto' | DomainType;
  readonly hostId?: number | null;
}

type Row = Selectable<Database['hypervisors']> & { site: string };
const num = (v: string | number | null) => (v === null ? null : Number(v));

function toHypervisor(row: Row): Hypervisor {
  return {
    name: row.name,
    uri: row.uri,
    site: row.site,
    storagePool: row.storage_pool,
    bridge: row.bridge,
    maxParallel: row.max_parallel,
    cpus: row.cpus,
    memoryMiB: num(row.memory_mib),
    poolCapacityBytes: num(row.pool_capacity),
    poolAvailableBytes: num(row.pool_available),
    domainType: row.domain_type,
    domainTypeReason: row.domain_type_reason,
    probedAt: row.probed_at ? new Date(row.probed_at).toISOString() : null,
    health: row.health,
    lastError: row.last_error,
    checkedAt: row.checked_at ? new Date(row.checked_at).toISOString() : null,
  };
}

function selectHypervisors(db: Kysely<Database>) {
  return db
    .selectFrom('hypervisors')
    .innerJoin('sites', 'sites.id', 'hypervisors.site_id')
    .selectAll('hypervisors')
    .select('sites.name as site');
}

export async function listHypervisors(db: Kysely<Database>, site?: string): Promise<Hypervisor[]> {
  let q = selectHypervisors(db).orderBy('hypervisors.name');
  if (site) q = q.where('sites.name', '=', site);
  return (await q.execute()).map(toHypervisor);
}

export async function getHypervisor(db: Kysely<Database>, name: string): Promise<Hypervisor & { id: number }> {
  const row = await selectHypervisors(db).where('hypervisors.name', '=', name).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `hypervisor "${name}" does not exist`);
  return { ...toHypervisor(row), id: row.id };
}

/**
 * The domain type a hypervisor's guests get, from its capabilities and the KVM probe
 * (kvm-probe.ts): kvm only where a KVM guest was seen to run the probe's work.
 */
export async function probeDomainType(client: LibvirtClient, options: ProbeOptions): Promise<ProbeVerdict> {
  const capabilities = domainTypesFor(await client.getCapabilities());
  if (!capabilities.includes('qemu') && !capabilities.includes('kvm'))
    throw new KvmfleetError(ErrorCode.Validation, 'the hypervisor cannot run x86_64 guests');
  return decideDomainType(await observeKvm(client, capabilities, options));
}

/** Probes again and stores the verdict (a hypervisor registered without one, or on an operator's request). */
export async function reprobeHypervisor(db: Kysely<Database>, pool: LibvirtPool, name: string): Promise<Hypervisor> {
  const hv = await getHypervisor(db, name);
  const verdict = await pool.use(hv.uri, (client) => probeDomainType(client, { storagePool: hv.storagePool }));
  await db
    .updateTable('hypervisors')
    .set({ domain_type: verdict.domainType, domain_type_reason: verdict.reason, probed_at: new Date().toISOString() })
    .where('id', '=', hv.id)
    .execute();
  return getHypervisor(db, name);
}

/** Reads capacity and health from libvirt and stores them; a hypervisor that cannot be reached is "down". */
export async function refreshHypervisor(db: Kysely<Database>, pool: LibvirtPool, name: string): Promise<Hypervisor> {
  const hv = await getHypervisor(db, name);
  try {
    const facts = await pool.use(
      hv.uri,
      async (client) => {
        const node = await client.nodeGetInfo();
        let capacity: number | null = null;
        let available: number | null = null;
        try {
          const storage = await client.lookupStoragePool(hv.storagePool);
          await client.refreshStoragePool(storage).catch(() => undefined);
          const info = await client.getStoragePoolInfo(storage);
          capacity = Number(info.capacity);
          available = Number(info.available);
        } catch {
          /* no such pool yet: capacity unknown, the hypervisor is still up */
        }
        return { cpus: node.cpus, memoryMiB: Math.floor(Number(node.memoryKiB) / 1024), capacity, available };
      },
      { retry: true },
    );
    await db
      .updateTable('hypervisors')
      .set({
        cpus: facts.cpus,
        memory_mib: facts.memoryMiB,
        pool_capacity: facts.capacity,
        pool_available: facts.available,
        health: 'up',
        last_error: null,
        checked_at: new Date().toISOString(),
      })
      .where('id', '=', hv.id)
      .execute();
  } catch (error) {
    await db
      .updateTable('hypervisors')
      .set({ health: 'down', last_error: (error as Error).message, checked_at: new Date().toISOString() })
      .where('id', '=', hv.id)
      .execute();
  }
  return getHypervisor(db, name);
}

export async function registerHypervisor(
  db: Kysely<Database>,
  pool: LibvirtPool,
  input: HypervisorInput,
): Promise<Hypervisor> {
  if (!RE.hypervisorName.test(input.name ?? ''))
    throw new KvmfleetError(
      ErrorCode.Validation,
      `hypervisor name "${input.name}" must be letters, digits, ".", "_" or "-"`,
    );
  try {
    parseLibvirtUri(input.uri);
  } catch (error) {
    throw new KvmfleetError(ErrorCode.Validation, (error as Error).message);
  }
  if (
    input.maxParallel !== undefined &&
    !(Number.isInteger(input.maxParallel) && input.maxParallel >= 1 && input.maxParallel <= 64)
  ) {
    throw new KvmfleetError(ErrorCode.Validation, 'maxParallel must be 1–64');
  }
  const siteId = await siteIdOf(db, input.site);
  const taken = await db
    .selectFrom('hypervisors')
    .select('name')
    .where((eb) => eb.or([eb('name', '=', input.name), eb('uri', '=', input.uri)]))
    .executeTakeFirst();
  if (taken)
    throw new KvmfleetError(ErrorCode.AlreadyExists, `a hypervisor "${taken.name}" already has that name or URI`);
  let verdict: ProbeVerdict;
  try {
    verdict =
      input.domainType && input.domainType !== 'auto'
        ? { domainType: input.domainType, reason: `set by the operator (${input.domainType})` }
        : await pool.use(input.uri, (client) =>
            probeDomainType(client, { storagePool: input.storagePool ?? 'default' }),
          );
  } catch (error) {
    if (error instanceof KvmfleetError) throw error;
    throw new KvmfleetError(ErrorCode.HypervisorUnavailable, `cannot reach ${input.uri}: ${(error as Error).message}`);
  }
  // The check above is only a friendly early answer: two registrations of one name or URI at once
  // both pass it while the probe runs, and the unique constraints decide which one lands.
  await insertHypervisor(db, {
    name: input.name,
    uri: input.uri,
    site_id: siteId,
    host_id: input.hostId ?? null,
    storage_pool: input.storagePool ?? 'default',
    bridge: input.bridge ?? 'br0',
    max_parallel: input.maxParallel ?? 4,
    domain_type: verdict.domainType,
    domain_type_reason: verdict.reason,
    probed_at: new Date().toISOString(),
    cpus: null,
    memory_mib: null,
    pool_capacity: null,
    pool_available: null,
    last_error: null,
    checked_at: null,
  });
  return refreshHypervisor(db, pool, input.name);
}

async function insertHypervisor(db: Kysely<Database>, row: Insertable<Database['hypervisors']>): Promise<void> {
  try {
    await db.insertInto('hypervisors').values(row).execute();
  } catch (error) {
    if (uniqueViolation(error, 'hypervisors_name_key') || uniqueViolation(error, 'hypervisors_uri_key'))
      throw new KvmfleetError(
        ErrorCode.AlreadyExists,
        `a hypervisor "${row.name}" or one at ${row.uri} already exists`,
      );
    throw error;
  }
}

export async function removeHypervisor(db: Kysely<Database>, name: string): Promise<void> {
  const hv = await getHypervisor(db, name);
  const vms = await db
    .selectFrom('vms')
    .select(db.fn.countAll<number>().as('n'))
    .where('hypervisor_id', '=', hv.id)
    .executeTakeFirstOrThrow();
  if (Number(vms.n) > 0) throw new KvmfleetError(ErrorCode.InUse, `hypervisor "${name}" still has ${vms.n} VMs`);
  await db.deleteFrom('hypervisors').where('id', '=', hv.id).execute();
}
