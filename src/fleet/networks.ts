/** Networks: an IPv4 subnet of a site, with its gateway, DNS, dynamic pool and relay addresses. */
import type { Kysely, Selectable } from 'kysely';
import { ErrorCode, KvmfleetError, problemsToError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { inventoryTransaction, type Db } from '../store/tx.ts';
import { cidrContains, formatIpv4, parseCidr, parseIpv4, rangeContains } from '../protocols/ipv4.ts';
import type { Network, NetworkInput } from './model.ts';
import { siteIdOf } from './sites.ts';
import { validateNetwork } from './validate-network.ts';

type NetworkRow = Selectable<Database['networks']> & { site: string };

export const DEFAULT_LEASE_SECONDS = 86_400;

function toNetwork(row: NetworkRow): Network {
  return {
    name: row.name,
    site: row.site,
    cidr: row.cidr,
    gateway: row.gateway,
    dns: row.dns,
    domain: row.domain,
    dynamicRange: row.dynamic_start && row.dynamic_end ? { start: row.dynamic_start, end: row.dynamic_end } : null,
    relays: row.relays,
    vlan: row.vlan,
    leaseSeconds: row.lease_seconds,
  };
}

function selectNetworks(db: Db) {
  return db
    .selectFrom('networks')
    .innerJoin('sites', 'sites.id', 'networks.site_id')
    .selectAll('networks')
    .select('sites.name as site');
}

export async function listNetworks(db: Db, filter: { site?: string } = {}): Promise<Network[]> {
  let query = selectNetworks(db).orderBy('networks.name');
  if (filter.site) query = query.where('sites.name', '=', filter.site);
  return (await query.execute()).map(toNetwork);
}

export async function getNetwork(db: Db, name: string): Promise<Network> {
  const row = await selectNetworks(db).where('networks.name', '=', name).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `network "${name}" does not exist`);
  return toNetwork(row);
}

/** Inserts the network, or with upsert replaces the one of that name; checked against all others. */
export async function putNetwork(trx: Db, input: NetworkInput, mode: 'create' | 'upsert'): Promise<Network> {
  const others = await trx.selectFrom('networks').select(['name', 'cidr']).execute();
  const problems = validateNetwork(input, others);
  if (problems.length > 0) throw problemsToError(problems);
  const siteId = await siteIdOf(trx, input.site);
  const existing = await trx.selectFrom('networks').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing && mode === 'create')
    throw new KvmfleetError(ErrorCode.AlreadyExists, `network "${input.name}" already exists`);
  if (existing) await checkReservationsStillFit(trx, existing.id, input);
  const values = {
    name: input.name,
    site_id: siteId,
    cidr: input.cidr,
    gateway: input.gateway ?? null,
    dns: JSON.stringify(input.dns ?? []),
    domain: input.domain ?? '',
    dynamic_start: input.dynamicRange?.start ?? null,
    dynamic_end: input.dynamicRange?.end ?? null,
    relays: JSON.stringify(input.relays ?? []),
    vlan: input.vlan ?? null,
    lease_seconds: input.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
  };
  if (existing) await trx.updateTable('networks').set(values).where('id', '=', existing.id).execute();
  else await trx.insertInto('networks').values(values).execute();
  return getNetwork(trx, input.name);
}

/** Changing a network must not strand its hosts' reserved addresses outside it or inside its pool. */
async function checkReservationsStillFit(trx: Db, networkId: number, input: NetworkInput): Promise<void> {
  const hosts = await trx
    .selectFrom('hosts')
    .select(['hostname', 'ip'])
    .where('network_id', '=', networkId)
    .where('ip', 'is not', null)
    .execute();
  const cidr = parseCidr(input.cidr)!;
  const start = input.dynamicRange ? parseIpv4(input.dynamicRange.start) : undefined;
  const end = input.dynamicRange ? parseIpv4(input.dynamicRange.end) : undefined;
  for (const host of hosts) {
    const ip = parseIpv4(host.ip!)!;
    if (!cidrContains(cidr, ip))
      throw new KvmfleetError(
        ErrorCode.IpOutsideNetwork,
        `host "${host.hostname}" has ${formatIpv4(ip)}, outside the new ${input.cidr}`,
      );
    if (start !== undefined && end !== undefined && rangeContains({ start, end }, ip)) {
      throw new KvmfleetError(
        ErrorCode.IpInDynamicRange,
        `host "${host.hostname}" has ${formatIpv4(ip)}, inside the new dynamic range`,
      );
    }
  }
}

export function createNetwork(db: Kysely<Database>, input: NetworkInput): Promise<Network> {
  return inventoryTransaction(db, (trx) => putNetwork(trx, input, 'create'));
}

export function updateNetwork(
  db: Kysely<Database>,
  name: string,
  patch: Partial<Omit<NetworkInput, 'name'>>,
): Promise<Network> {
  return inventoryTransaction(db, async (trx) => {
    const current = await getNetwork(trx, name);
    const merged: NetworkInput = {
      name,
      site: patch.site ?? current.site,
      cidr: patch.cidr ?? current.cidr,
      gateway: patch.gateway === undefined ? current.gateway : patch.gateway,
      dns: patch.dns ?? [...current.dns],
      domain: patch.domain ?? current.domain,
      dynamicRange: patch.dynamicRange === undefined ? current.dynamicRange : patch.dynamicRange,
      relays: patch.relays ?? [...current.relays],
      vlan: patch.vlan === undefined ? current.vlan : patch.vlan,
      leaseSeconds: patch.leaseSeconds ?? current.leaseSeconds,
    };
    return putNetwork(trx, merged, 'upsert');
  });
}

export function deleteNetwork(db: Kysely<Database>, name: string): Promise<void> {
  return inventoryTransaction(db, async (trx) => {
    const row = await trx.selectFrom('networks').select('id').where('name', '=', name).executeTakeFirst();
    if (!row) throw new KvmfleetError(ErrorCode.NotFound, `network "${name}" does not exist`);
    const { count } = await trx
      .selectFrom('hosts')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('network_id', '=', row.id)
      .executeTakeFirstOrThrow();
    if (Number(count) > 0) throw new KvmfleetError(ErrorCode.InUse, `network "${name}" still has ${count} host(s)`);
    await trx.deleteFrom('networks').where('id', '=', row.id).execute();
  });
}
