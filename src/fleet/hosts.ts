/** Hosts: machines known by MAC(s), with a reserved address on a network, a profile and a build state. */
import { sql, type Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { BuildState, Database } from '../store/schema.ts';
import { inventoryTransaction, type Db } from '../store/tx.ts';
import type { Host, HostInput } from './model.ts';
import { formatIpv4, parseIpv4 } from '../protocols/ipv4.ts';
import { normalizeMac } from './mac.ts';
import {
  UUID,
  normalizeHostname,
  validateHostBatch,
  type ExistingIdentifiers,
  type NormalizedHost,
  type RowProblems,
} from './validate-host.ts';

export interface HostFilter {
  site?: string | undefined;
  network?: string | undefined;
  state?: BuildState | undefined;
  /** Part of a hostname, an address or a MAC (case-insensitive). */
  q?: string | undefined;
  /** A page: at most `limit` hosts from `offset` on, by hostname. */
  limit?: number | undefined;
  offset?: number | undefined;
}

function hostsMatching(db: Db, filter: HostFilter = {}) {
  let query = db
    .selectFrom('hosts')
    .leftJoin('networks', 'networks.id', 'hosts.network_id')
    .leftJoin('sites', 'sites.id', 'networks.site_id')
    .leftJoin('profiles', 'profiles.id', 'hosts.profile_id');
  if (filter.site) query = query.where('sites.name', '=', filter.site);
  if (filter.network) query = query.where('networks.name', '=', filter.network);
  if (filter.state) query = query.where('hosts.build_state', '=', filter.state);
  const needle = filter.q?.trim().toLowerCase();
  if (needle) {
    const like = `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    query = query.where((eb) =>
      eb.or([
        eb('hosts.hostname', 'like', like),
        eb(sql<string>`host(hosts.ip)`, 'like', like),
        eb(
          'hosts.id',
          'in',
          eb.selectFrom('host_macs').select('host_macs.host_id').where('host_macs.mac', 'like', like),
        ),
      ]),
    );
  }
  return query;
}

function selectHosts(db: Db, filter: HostFilter = {}) {
  return hostsMatching(db, filter).select([
    'hosts.id',
    'hosts.hostname',
    'hosts.ip',
    'hosts.smbios_uuid',
    'hosts.bmc',
    'hosts.build_state',
    'hosts.state_changed_at',
    'hosts.power_state',
    'hosts.power_checked_at',
    'hosts.power_error',
    'networks.name as network',
    'sites.name as site',
    'profiles.name as profile',
  ]);
}

/** Runs a query per slice of values, so that lists of thousands stay within bind-parameter limits. */
async function inChunks<T, R>(values: readonly T[], query: (chunk: T[]) => Promise<R[]>, size = 5000): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < values.length; i += size) results.push(...(await query(values.slice(i, i + size))));
  return results;
}

type HostRow = Awaited<ReturnType<ReturnType<typeof selectHosts>['executeTakeFirstOrThrow']>>;

async function withMacs(db: Db, rows: HostRow[]): Promise<Host[]> {
  const macsByHost = new Map<number, string[]>();
  const macs = await inChunks(
    rows.map((row) => row.id),
    (ids) =>
      db
        .selectFrom('host_macs')
        .select(['host_id', 'mac'])
        .where('host_id', 'in', ids)
        .orderBy('host_id')
        .orderBy('position')
        .execute(),
  );
  for (const { host_id, mac } of macs) macsByHost.set(host_id, [...(macsByHost.get(host_id) ?? []), mac]);
  return rows.map((row) => ({
    hostname: row.hostname,
    macs: macsByHost.get(row.id) ?? [],
    ip: row.ip,
    network: row.network,
    site: row.site,
    profile: row.profile,
    smbiosUuid: row.smbios_uuid,
    bmc: row.bmc,
    buildState: row.build_state,
    stateChangedAt: new Date(row.state_changed_at).toISOString(),
    ...(row.power_state && row.power_checked_at
      ? {
          power: {
            state: row.power_state,
            checkedAt: new Date(row.power_checked_at).toISOString(),
            ...(row.power_error ? { error: row.power_error } : {}),
          },
        }
      : {}),
  }));
}

export async function listHosts(db: Db, filter: HostFilter = {}): Promise<Host[]> {
  let query = selectHosts(db, filter).orderBy('hosts.hostname');
  if (filter.limit !== undefined) query = query.limit(filter.limit).offset(filter.offset ?? 0);
  return withMacs(db, await query.execute());
}

/** How many hosts match (all pages). */
export async function countHosts(db: Db, filter: HostFilter = {}): Promise<number> {
  const row = await hostsMatching(db, filter)
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function getHost(db: Db, hostname: string): Promise<Host> {
  const row = await selectHosts(db).where('hosts.hostname', '=', normalizeHostname(hostname)).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist`);
  const [host] = await withMacs(db, [row]);
  return host!;
}

export async function findHostByMac(db: Db, mac: string): Promise<Host | undefined> {
  const normalized = normalizeMac(mac);
  if (!normalized) return undefined;
  const row = await selectHosts(db)
    .innerJoin('host_macs', 'host_macs.host_id', 'hosts.id')
    .where('host_macs.mac', '=', normalized)
    .executeTakeFirst();
  return row ? (await withMacs(db, [row]))[0] : undefined;
}

/** The store's owners of the identifiers that a batch mentions (so validation needs no full table scan). */
async function loadExistingIdentifiers(trx: Db, rows: readonly HostInput[]): Promise<ExistingIdentifiers> {
  const hostnames = [...new Set(rows.map((r) => normalizeHostname(r.hostname ?? '')))];
  const ips = [...new Set(rows.map((r) => r.ip).filter((ip): ip is string => typeof ip === 'string' && ip !== ''))];
  const macs = [
    ...new Set(
      rows
        .flatMap((r) => (r.macs ?? []).map((m) => normalizeMac(String(m))))
        .filter((m): m is string => m !== undefined),
    ),
  ];
  const uuids = [
    ...new Set(rows.map((r) => r.smbiosUuid?.toLowerCase()).filter((u): u is string => !!u && UUID.test(u))),
  ];
  const result = {
    hostnames: new Set<string>(),
    ipOwners: new Map<string, string>(),
    macOwners: new Map<string, string>(),
    uuidOwners: new Map<string, string>(),
  };
  for (const row of await inChunks(hostnames, (chunk) =>
    trx.selectFrom('hosts').select('hostname').where('hostname', 'in', chunk).execute(),
  ))
    result.hostnames.add(row.hostname);
  // Only well-formed values reach SQL: a failed cast would abort the whole import transaction.
  const validIps = ips
    .map((ip) => parseIpv4(ip.trim()))
    .filter((ip): ip is number => ip !== undefined)
    .map(formatIpv4);
  for (const row of await inChunks(validIps, (chunk) =>
    trx.selectFrom('hosts').select(['hostname', 'ip']).where('ip', 'in', chunk).execute(),
  ))
    result.ipOwners.set(row.ip!, row.hostname);
  const macRows = await inChunks(macs, (chunk) =>
    trx
      .selectFrom('host_macs')
      .innerJoin('hosts', 'hosts.id', 'host_macs.host_id')
      .select(['host_macs.mac', 'hosts.hostname'])
      .where('host_macs.mac', 'in', chunk)
      .execute(),
  );
  for (const row of macRows) result.macOwners.set(row.mac, row.hostname);
  for (const row of await inChunks(uuids, (chunk) =>
    trx.selectFrom('hosts').select(['hostname', 'smbios_uuid']).where('smbios_uuid', 'in', chunk).execute(),
  ))
    result.uuidOwners.set(row.smbios_uuid!, row.hostname);
  return result;
}

export interface ApplyHostsOptions {
  mode: 'create' | 'upsert';
  dryRun?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface ApplyHostsResult {
  created: number;
  updated: number;
  errors: RowProblems[];
}

/**
 * Validates every row, then writes all or nothing in the caller's transaction.
 * Returns the per-row problems (and writes nothing) when any row is bad.
 */
export async function applyHosts(
  trx: Db,
  rows: readonly HostInput[],
  options: ApplyHostsOptions,
): Promise<ApplyHostsResult> {
  const networks = await trx
    .selectFrom('networks')
    .select(['id', 'name', 'cidr', 'dynamic_start', 'dynamic_end'])
    .execute();
  const profiles = await trx.selectFrom('profiles').select(['id', 'name']).execute();
  const existing = await loadExistingIdentifiers(trx, rows);
  const { hosts, errors } = validateHostBatch(rows, {
    networks: new Map(
      networks.map((n) => [
        n.name,
        {
          name: n.name,
          cidr: n.cidr,
          dynamicRange: n.dynamic_start && n.dynamic_end ? { start: n.dynamic_start, end: n.dynamic_end } : null,
        },
      ]),
    ),
    profiles: new Set(profiles.map((p) => p.name)),
    existing,
    mode: options.mode,
  });
  const created = hosts.filter((h) => !h.exists).length;
  const result = { created, updated: hosts.length - created, errors };
  if (errors.length > 0 || options.dryRun) return result;

  const networkId = new Map(networks.map((n) => [n.name, n.id]));
  const profileId = new Map(profiles.map((p) => [p.name, p.id]));
  const toRow = (h: NormalizedHost) => ({
    hostname: h.hostname,
    network_id: networkId.get(h.network)!,
    ip: h.ip,
    profile_id: profileId.get(h.profile)!,
    smbios_uuid: h.smbiosUuid,
    bmc: JSON.stringify(h.bmc),
    build_state: 'ready' as const,
  });

  const fresh = hosts.filter((h) => !h.exists);
  const updates = hosts.filter((h) => h.exists);
  const total = hosts.length;
  let done = 0;
  const CHUNK = 500;
  for (let i = 0; i < fresh.length; i += CHUNK) {
    const chunk = fresh.slice(i, i + CHUNK);
    const inserted = await trx.insertInto('hosts').values(chunk.map(toRow)).returning(['id', 'hostname']).execute();
    const idOf = new Map(inserted.map((r) => [r.hostname, r.id]));
    const macRows = chunk.flatMap((h) =>
      h.macs.map((mac, position) => ({ mac, host_id: idOf.get(h.hostname)!, position })),
    );
    await trx.insertInto('host_macs').values(macRows).execute();
    done += chunk.length;
    options.onProgress?.(done, total);
  }
  for (const host of updates) {
    // An upsert keeps the build state and history; it replaces addressing, profile and MACs.
    const { build_state: _keep, ...row } = toRow(host);
    const { id } = await trx
      .updateTable('hosts')
      .set(row)
      .where('hostname', '=', host.hostname)
      .returning('id')
      .executeTakeFirstOrThrow();
    await trx.deleteFrom('host_macs').where('host_id', '=', id).execute();
    await trx
      .insertInto('host_macs')
      .values(host.macs.map((mac, position) => ({ mac, host_id: id, position })))
      .execute();
    done += 1;
    if (done % CHUNK === 0 || done === total) options.onProgress?.(done, total);
  }
  return result;
}

/** Adds one host; its problems come back as one coded error (the first) with all of them in details. */
export async function createHost(db: Kysely<Database>, input: HostInput): Promise<Host> {
  return inventoryTransaction(db, async (trx) => {
    const { errors } = await applyHosts(trx, [input], { mode: 'create' });
    const problems = errors[0]?.problems;
    if (problems && problems.length > 0) throw new KvmfleetError(problems[0]!.code, problems[0]!.message, { problems });
    return getHost(trx, input.hostname);
  });
}

export function deleteHost(db: Kysely<Database>, hostname: string): Promise<void> {
  return inventoryTransaction(db, async (trx) => {
    const result = await trx.deleteFrom('hosts').where('hostname', '=', normalizeHostname(hostname)).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0)
      throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist`);
  });
}

export async function countHostsByState(db: Db, site?: string): Promise<Record<BuildState, number>> {
  let query = db
    .selectFrom('hosts')
    .leftJoin('networks', 'networks.id', 'hosts.network_id')
    .leftJoin('sites', 'sites.id', 'networks.site_id')
    .select(['hosts.build_state', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('hosts.build_state');
  if (site) query = query.where('sites.name', '=', site);
  const counts: Record<BuildState, number> = { discovered: 0, ready: 0, building: 0, built: 0, failed: 0 };
  for (const row of await query.execute()) counts[row.build_state] = Number(row.count);
  return counts;
}
