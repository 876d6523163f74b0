/**
 * The build lifecycle in the store: admission control per site, build tokens, the %post callback,
 * rebuilds, discovered machines, and the per-host timeline of boot events.
 *
 *   discovered ──adopt──▶ ready ──admitted──▶ building ──callback──▶ built ──rebuild──▶ ready
 *                           ▲  (queued while the site is at its cap)   │ timeout
 *                           └──────────────────rebuild──────────── failed
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { cidrContains, parseCidr, parseIpv4 } from '../protocols/ipv4.ts';
import { normalizeMac } from './mac.ts';
import type { Network, Profile } from './model.ts';
import type { Database } from '../store/schema.ts';
import { textLiteral } from '../store/literal.ts';
import type { Db } from '../store/tx.ts';
import { startPeriodic, type Periodic } from '../store/periodic.ts';
import type {
  Admission,
  BootHost,
  BuildPolicy,
  HostEventKind,
  ProgressState,
  SiteBuilds,
  SiteProgress,
  TimelineEntry,
} from './build-model.ts';

// Its model, for importers of the lifecycle (the types' one declaration is build-model.ts).
export { DEFAULT_BUILD_POLICY } from './build-model.ts';
export type {
  Admission,
  BootHost,
  BuildPolicy,
  HostEventKind,
  ProgressState,
  SiteBuilds,
  SiteProgress,
  TimelineEntry,
} from './build-model.ts';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export async function recordEvent(
  db: Db,
  hostId: number,
  kind: HostEventKind,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await db
    .insertInto('host_events')
    .values({ host_id: hostId, kind, detail: JSON.stringify(detail) })
    .execute();
}

/** Moves a host along the build lifecycle (the diagram above), stamping when. */
export async function setState(
  db: Db,
  hostId: number,
  state: Database['hosts']['build_state'],
  extra: Partial<Record<'build_token' | 'build_started_at' | 'queued_at' | 'queue_seen_at', string | null>> = {},
): Promise<void> {
  await db
    .updateTable('hosts')
    .set({ build_state: state, state_changed_at: sql<Date>`now()`, ...(extra as object) })
    .where('id', '=', hostId)
    .execute();
}

/**
 * The one read of a booting machine's host: host_macs ⋈ hosts (and its network's site). Every
 * lookup by MAC or UUID goes through it (findBootHost here, boot/backend.ts for the boot roles).
 */
export function selectBootHosts(db: Db) {
  return db
    .selectFrom('host_macs')
    .innerJoin('hosts', 'hosts.id', 'host_macs.host_id')
    .leftJoin('networks', 'networks.id', 'hosts.network_id')
    .select([
      'host_macs.mac',
      'hosts.id',
      'hosts.hostname',
      'hosts.ip',
      'hosts.network_id',
      'networks.site_id',
      'hosts.profile_id',
      'hosts.build_state',
    ]);
}

type BootHostRow = Awaited<ReturnType<ReturnType<typeof selectBootHosts>['executeTakeFirstOrThrow']>>;

export const toBootHost = (row: BootHostRow): BootHost => ({
  id: row.id,
  mac: row.mac,
  hostname: row.hostname,
  ip: row.ip,
  networkId: row.network_id,
  siteId: row.site_id,
  profileId: row.profile_id,
  buildState: row.build_state,
});

export async function findBootHost(db: Db, mac: string): Promise<BootHost | undefined> {
  const normalized = normalizeMac(mac);
  if (!normalized) return undefined;
  const row = await selectBootHosts(db).where('host_macs.mac', '=', normalized).executeTakeFirst();
  return row ? toBootHost(row) : undefined;
}

const bare = (ip: string | undefined) => ip?.replace(/^::ffff:/, '');

/**
 * The addresses a host's own requests come from: its reservation and its current DHCP leases (any
 * of its MACs). On a boot network anyone can claim a MAC; only these addresses get a build token.
 */
export async function machineAddresses(db: Db, hostId: number): Promise<string[]> {
  const host = await db.selectFrom('hosts').select('ip').where('id', '=', hostId).executeTakeFirst();
  const leases = await db
    .selectFrom('leases')
    .select('ip')
    .where('mac', 'in', db.selectFrom('host_macs').select('mac').where('host_id', '=', hostId))
    .where('state', '=', 'bound')
    .where('expires_at', '>', new Date())
    .orderBy('updated_at', 'desc')
    .execute();
  return [...new Set([...(host?.ip ? [host.ip] : []), ...leases.map((l) => l.ip)])];
}

/** Whether a request from `clientIp` (after trusted proxies) comes from the host itself. */
export async function isFromMachine(db: Db, hostId: number, clientIp: string | undefined): Promise<boolean> {
  const ip = bare(clientIp);
  return ip !== undefined && (await machineAddresses(db, hostId)).includes(ip);
}

/** Records an unknown machine that asked to boot, on the network its address belongs to. */
export async function registerDiscovered(
  db: Kysely<Database>,
  mac: string,
  clientIp: string | undefined,
  via: string,
): Promise<BootHost> {
  const normalized = normalizeMac(mac);
  if (!normalized) throw new KvmfleetError(ErrorCode.Validation, `"${mac}" is not a MAC address`);
  return db.transaction().execute(async (trx) => {
    const existing = await findBootHost(trx, normalized);
    if (existing) return existing;
    let networkId: number | null = null;
    const ip = clientIp ? parseIpv4(bare(clientIp)!) : undefined;
    if (ip !== undefined) {
      for (const network of await trx.selectFrom('networks').select(['id', 'cidr']).execute()) {
        const cidr = parseCidr(network.cidr);
        if (cidr && cidrContains(cidr, ip)) networkId = network.id;
      }
    }
    const hostname = `discovered-${normalized.replace(/:/g, '')}`;
    const row = await trx
      .insertInto('hosts')
      .values({
        hostname,
        network_id: networkId,
        build_state: 'discovered',
        bmc: 'null',
        last_seen_ip: clientIp?.replace(/^::ffff:/, '') ?? null,
      })
      .onConflict((oc) => oc.column('hostname').doNothing())
      .returning(['id'])
      .executeTakeFirst();
    if (!row) return (await findBootHost(trx, normalized))!;
    await trx.insertInto('host_macs').values({ mac: normalized, host_id: row.id, position: 0 }).execute();
    await recordEvent(trx, row.id, 'discovered', { via, ip: clientIp ?? null });
    const site = networkId
      ? await trx.selectFrom('networks').select('site_id').where('id', '=', networkId).executeTakeFirst()
      : undefined;
    return {
      id: row.id,
      mac: normalized,
      hostname,
      ip: null,
      networkId,
      siteId: site?.site_id ?? null,
      profileId: null,
      buildState: 'discovered',
    };
  });
}

/**
 * Lets a ready (or building) host build if its site has a free slot and no one is ahead of it.
 * Serialized per site by locking the site row, so N boot servers on one PostgreSQL never exceed the cap.
 * A building host asking again gets a fresh token (only the hash is stored, so the old one cannot be re-sent).
 */
export async function admit(db: Kysely<Database>, host: BootHost, policy: BuildPolicy): Promise<Admission> {
  return db.transaction().execute(async (trx) => {
    const current = await trx
      .selectFrom('hosts')
      .select(['build_state', 'queued_at'])
      .where('id', '=', host.id)
      .forUpdate()
      .executeTakeFirstOrThrow();
    if (current.build_state === 'building') {
      const token = newToken();
      await trx
        .updateTable('hosts')
        .set({ build_token: hashToken(token) })
        .where('id', '=', host.id)
        .execute();
      return { admitted: true, token };
    }
    if (current.build_state !== 'ready')
      throw new KvmfleetError(
        ErrorCode.Validation,
        `host ${host.hostname} is ${current.build_state}, not ready to build`,
      );
    if (host.siteId === null)
      throw new KvmfleetError(ErrorCode.Validation, `host ${host.hostname} has no network, so no site`);
    const site = await trx
      .selectFrom('sites')
      .select(['id', 'build_cap'])
      .where('id', '=', host.siteId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    await expireStaleBuilds(trx, policy, site.id);

    const inSite = (qb: ReturnType<typeof trx.selectFrom<'hosts'>>) =>
      qb.innerJoin('networks', 'networks.id', 'hosts.network_id').where('networks.site_id', '=', site.id);
    const { building } = await inSite(trx.selectFrom('hosts'))
      .select((eb) => eb.fn.countAll<number>().as('building'))
      .where('hosts.build_state', '=', 'building')
      .executeTakeFirstOrThrow();
    // Waiting hosts that stopped asking (powered off) do not hold their place for ever.
    const fresh = new Date(Date.now() - policy.retrySeconds * 3000);
    const queuedAt = current.queued_at ? new Date(current.queued_at) : new Date();
    const { ahead } = await inSite(trx.selectFrom('hosts'))
      .select((eb) => eb.fn.countAll<number>().as('ahead'))
      .where('hosts.build_state', '=', 'ready')
      .where('hosts.id', '!=', host.id)
      .where('hosts.queued_at', 'is not', null)
      .where('hosts.queued_at', '<', queuedAt)
      .where('hosts.queue_seen_at', '>=', fresh)
      .executeTakeFirstOrThrow();
    const free = site.build_cap - Number(building);
    if (Number(ahead) < free) {
      const token = newToken();
      await trx
        .updateTable('hosts')
        .set({
          build_state: 'building',
          build_token: hashToken(token),
          build_started_at: sql<Date>`now()`,
          state_changed_at: sql<Date>`now()`,
          queued_at: null,
          queue_seen_at: null,
          build_count: sql<number>`build_count + 1`,
        })
        .where('id', '=', host.id)
        .execute();
      await recordEvent(trx, host.id, 'build-started', { waited: current.queued_at !== null });
      return { admitted: true, token };
    }
    await trx
      .updateTable('hosts')
      .set({
        queued_at: current.queued_at ?? sql<Date>`now()`,
        queue_seen_at: sql<Date>`now()`,
      })
      .where('id', '=', host.id)
      .execute();
    if (!current.queued_at)
      await recordEvent(trx, host.id, 'queued', { position: Number(ahead) + 1, cap: site.build_cap });
    return { admitted: false, position: Number(ahead) + 1, cap: site.build_cap };
  });
}

/**
 * Builds that never called back are failed, so they stop holding one of the site's slots. Run by the
 * periodic sweep (all sites) and at admission (the site being admitted). The deadline is compared in
 * the database's time only (the boot servers' clocks may disagree with it and with each other), and
 * one UPDATE both picks and fails the builds, so nodes sweeping at once fail each build exactly once:
 * PostgreSQL re-checks the state of a row another transaction just changed. The build token is kept:
 * a late callback with it is still accepted until a new build replaces it (see markBuilt).
 * Returns the hosts failed (at most `limit`).
 */
export async function expireStaleBuilds(db: Db, policy: BuildPolicy, siteId?: number, limit = 500): Promise<number[]> {
  const timeoutSeconds = policy.buildTimeoutMs / 1000;
  const inSite =
    siteId === undefined ? sql`` : sql`and network_id in (select id from networks where site_id = ${siteId})`;
  const { rows } = await sql<{ id: number }>`
    update hosts set build_state = 'failed', state_changed_at = now()
    where id in (
      select id from hosts
      where build_state = 'building' and build_started_at < now() - make_interval(secs => ${timeoutSeconds}) ${inSite}
      order by build_started_at limit ${limit}
    ) and build_state = 'building'
    returning id`.execute(db);
  for (const { id } of rows)
    await recordEvent(db, id, 'build-failed', { reason: 'timeout', timeoutMs: policy.buildTimeoutMs });
  return rows.map((r) => r.id);
}

/** One sweep of build deadlines over every site, in transactions of at most 500 hosts. Returns how many failed. */
export async function sweepBuildTimeouts(db: Kysely<Database>, policy: BuildPolicy): Promise<number> {
  let failed = 0;
  for (;;) {
    const batch = await db.transaction().execute((trx) => expireStaleBuilds(trx, policy));
    failed += batch.length;
    if (batch.length < 500) return failed;
  }
}

/** How often the build deadlines are checked, so a build fails on time whether or not other hosts boot. */
export const BUILD_SWEEP_INTERVAL_MS = 30_000;

/** The build timeout on its own clock: sweeps every `intervalMs` (every node may run it; see expireStaleBuilds). */
export function startBuildTimeoutSweep(
  db: Kysely<Database>,
  policy: BuildPolicy,
  onError: (error: unknown) => void,
  intervalMs = BUILD_SWEEP_INTERVAL_MS,
): Periodic {
  return startPeriodic(intervalMs, () => sweepBuildTimeouts(db, policy), onError);
}

/** The host whose current build token this is, or undefined (wrong, old or used token). */
export async function hostByToken(db: Db, token: string): Promise<{ id: number; hostname: string } | undefined> {
  if (!isTokenShaped(token)) return undefined;
  return db
    .selectFrom('hosts')
    .select(['id', 'hostname'])
    .where('build_token', '=', hashToken(token))
    .where('build_state', '=', 'building')
    .executeTakeFirst();
}

/** What a current build's Kickstart and boot files are made of, found by its token (buildsByTokenHashes). */
export interface TokenBuild {
  readonly hostId: number;
  readonly hostname: string;
  readonly ip: string | null;
  /** In their order (the first is the host's primary MAC). */
  readonly macs: readonly string[];
  readonly network: Pick<Network, 'name' | 'site' | 'cidr' | 'gateway' | 'dns' | 'domain'> | null;
  readonly profile:
    | (Pick<
        Profile,
        'name' | 'os' | 'installTreeUrl' | 'kernelPath' | 'initrdPath' | 'kickstartTemplate' | 'packages' | 'kernelArgs'
      > & {
        /** crypt(3) hash, for the Kickstart's rootpw; never logged or returned by the API. */
        readonly rootPasswordHash: string;
      })
    | null;
}

interface TokenBuildRow {
  id: number;
  hostname: string;
  ip: string | null;
  build_token: string | null;
  macs: string[];
  network_name: string | null;
  cidr: string | null;
  gateway: string | null;
  dns: string[] | null;
  domain: string | null;
  site_name: string | null;
  profile_name: string | null;
  os: string | null;
  install_tree_url: string | null;
  kernel_path: string | null;
  initrd_path: string | null;
  kickstart_template: string | null;
  packages: string[] | null;
  kernel_args: string | null;
  root_password_hash: string | null;
}

const TOKEN_BUILDS_SQL = `
  select h.id, h.hostname, h.ip, h.build_token,
    coalesce((select json_agg(m.mac order by m.position, m.mac) from host_macs m where m.host_id = h.id), '[]'::json) as macs,
    n.name as network_name, n.cidr, n.gateway, n.dns, n.domain, s.name as site_name,
    p.name as profile_name, p.os, p.install_tree_url, p.kernel_path, p.initrd_path, p.kickstart_template,
    p.packages, p.kernel_args, p.root_password_hash
  from hosts h
    left join networks n on n.id = h.network_id
    left join sites s on s.id = n.site_id
    left join profiles p on p.id = h.profile_id
  where h.build_state = 'building' and h.build_token`;

/** Stores (one session each: the embedded one) on which the lookup is prepared already. */
const preparedOn = new WeakSet<object>();
const PREPARED = 'kvmfleet_builds_by_token';

/**
 * The lookup as a prepared statement, planned once per session instead of once per batch (the
 * embedded store plans slowly). Only for a store that is a single session: on a pool, the
 * statement would exist on one connection and be executed on another.
 */
async function executePrepared(db: Db, array: string): Promise<TokenBuildRow[]> {
  const run = async () => (await sql<TokenBuildRow>`execute ${sql.raw(PREPARED)}(${sql.raw(array)})`.execute(db)).rows;
  const prepare = async () => {
    await sql`prepare ${sql.raw(PREPARED)}(text[]) as ${sql.raw(TOKEN_BUILDS_SQL)} = any($1)`.execute(db);
    preparedOn.add(db);
  };
  if (!preparedOn.has(db)) await prepare();
  try {
    return await run();
  } catch (error) {
    // 26000: the session lost it (it cannot here, but a retry is cheap).
    if ((error as { code?: string }).code !== '26000') throw error;
    await prepare();
    return run();
  }
}

/** Whether a string can be a build token at all (what newToken makes, with room to spare). */
export const isTokenShaped = (token: string): boolean => /^[A-Za-z0-9_-]{16,64}$/.test(token);

/**
 * The current builds whose token hashes these are, with their host, MACs, network, site and
 * profile, in ONE query (hosts ⋈ networks ⋈ sites ⋈ profiles, the MACs aggregated), keyed by hash.
 * A hash that is no building host's current one is simply absent. Read fresh every time: nothing is
 * kept, so a spent or replaced token stops working on every boot server at once.
 */
export async function buildsByTokenHashes(
  db: Db,
  hashes: readonly string[],
  options: { prepared?: boolean } = {},
): Promise<Map<string, TokenBuild>> {
  const found = new Map<string, TokenBuild>();
  // Hashes are hex (hashToken): anything else is no one's, and the rest can go in as literals —
  // one statement without parameters, the cheapest the store runs (store/literal.ts).
  const wanted = [...new Set(hashes)].filter((hash) => /^[0-9a-f]{64}$/.test(hash));
  if (wanted.length === 0) return found;
  const list = wanted.map(textLiteral).join(', ');
  const rows = options.prepared
    ? await executePrepared(db, `array[${list}]::text[]`)
    : (await sql<TokenBuildRow>`${sql.raw(TOKEN_BUILDS_SQL)} in (${sql.raw(list)})`.execute(db)).rows;
  for (const row of rows) {
    if (row.build_token === null) continue;
    found.set(row.build_token, {
      hostId: row.id,
      hostname: row.hostname,
      ip: row.ip,
      macs: row.macs,
      network:
        row.network_name !== null && row.site_name !== null
          ? {
              name: row.network_name,
              site: row.site_name,
              cidr: row.cidr!,
              gateway: row.gateway,
              dns: row.dns ?? [],
              domain: row.domain ?? '',
            }
          : null,
      profile:
        row.profile_name !== null
          ? {
              name: row.profile_name,
              os: row.os!,
              installTreeUrl: row.install_tree_url!,
              kernelPath: row.kernel_path!,
              initrdPath: row.initrd_path!,
              kickstartTemplate: row.kickstart_template!,
              packages: row.packages ?? [],
              kernelArgs: row.kernel_args ?? '',
              rootPasswordHash: row.root_password_hash ?? '',
            }
          : null,
    });
  }
  return found;
}

/**
 * The %post callback: the build is done; the token is spent. A host the build timeout failed whose
 * token is still its current one (no rebuild since) installed after all — its callback was only
 * late (a boot server down, a store blip): it ends built, and its timeline says it was late. Any
 * other token (an older build's, a used one) finds no host.
 */
export async function markBuilt(
  db: Kysely<Database>,
  token: string,
  clientIp: string | undefined,
): Promise<string | undefined> {
  if (!isTokenShaped(token)) return undefined;
  return db.transaction().execute(async (trx) => {
    const host = await trx
      .selectFrom('hosts')
      .select(['id', 'hostname', 'build_state', 'state_changed_at'])
      .where('build_token', '=', hashToken(token))
      .where('build_state', 'in', ['building', 'failed'])
      .forUpdate()
      .executeTakeFirst();
    if (!host) return undefined;
    const late =
      host.build_state === 'failed' ? { late: true, failedAt: new Date(host.state_changed_at).toISOString() } : {};
    await setState(trx, host.id, 'built', { build_token: null });
    await recordEvent(trx, host.id, 'built', { ip: clientIp ?? null, ...late });
    await registerBuiltHypervisor(trx, host.id);
    return host.hostname;
  });
}

/** States from which an operator may declare a host built: its install ran (or is running) but its callback never came. */
const MARKABLE_BUILT = new Set<string>(['building', 'failed']);

/**
 * An operator says the host is installed (its callback was lost): it ends built, its token spent and
 * its hypervisor registered as the callback would have. From any other state it makes no sense (409).
 */
export async function operatorMarkBuilt(
  db: Kysely<Database>,
  hostname: string,
  actor: string,
): Promise<{ hostname: string; buildState: 'built'; was: string }> {
  return db.transaction().execute(async (trx) => {
    const host = await trx
      .selectFrom('hosts')
      .select(['id', 'hostname', 'build_state'])
      .where('hostname', '=', hostname.toLowerCase())
      .forUpdate()
      .executeTakeFirst();
    if (!host) throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist`);
    if (!MARKABLE_BUILT.has(host.build_state)) {
      throw new KvmfleetError(
        ErrorCode.WrongBuildState,
        `host "${host.hostname}" is ${host.build_state}: only a building or failed host can be marked built`,
        { buildState: host.build_state },
      );
    }
    await setState(trx, host.id, 'built', { build_token: null });
    await recordEvent(trx, host.id, 'built', { by: actor, manual: true, was: host.build_state });
    await registerBuiltHypervisor(trx, host.id);
    return { hostname: host.hostname, buildState: 'built', was: host.build_state };
  });
}

/**
 * A built host is a KVM hypervisor (that is what the profiles install): it joins its site's
 * hypervisors, reached over SSH by its reserved address, else its current DHCP lease — never the
 * address the callback came from, which anyone holding the URL could choose. Its capacity and
 * domain type are read when it is first refreshed or used; an existing entry is kept.
 */
async function registerBuiltHypervisor(trx: Db, hostId: number): Promise<void> {
  const row = await trx
    .selectFrom('hosts')
    .innerJoin('networks', 'networks.id', 'hosts.network_id')
    .select(['hosts.hostname', 'hosts.ip', 'networks.site_id'])
    .where('hosts.id', '=', hostId)
    .executeTakeFirst();
  const address = row ? (await machineAddresses(trx, hostId))[0] : undefined;
  if (!row || !address) return;
  await trx
    .insertInto('hypervisors')
    .values({
      name: row.hostname,
      uri: `qemu+ssh://root@${address}/system`,
      site_id: row.site_id,
      host_id: hostId,
      domain_type: null,
      cpus: null,
      memory_mib: null,
      pool_capacity: null,
      pool_available: null,
      last_error: null,
      checked_at: null,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Starts a new build of a host: it installs at its next network boot. */
export async function requestRebuild(db: Kysely<Database>, hostname: string, actor: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const host = await trx
      .selectFrom('hosts')
      .select(['id', 'build_state', 'profile_id'])
      .where('hostname', '=', hostname.toLowerCase())
      .forUpdate()
      .executeTakeFirst();
    if (!host) throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist`);
    if (host.build_state === 'discovered' || host.profile_id === null)
      throw new KvmfleetError(ErrorCode.Validation, `host "${hostname}" has no profile: adopt it first`);
    await setState(trx, host.id, 'ready', { build_token: null, queued_at: null, queue_seen_at: null });
    await recordEvent(trx, host.id, 'rebuild-requested', { by: actor, was: host.build_state });
  });
}

export async function hostTimeline(db: Db, hostname: string): Promise<TimelineEntry[]> {
  const host = await db
    .selectFrom('hosts')
    .select('id')
    .where('hostname', '=', hostname.toLowerCase())
    .executeTakeFirst();
  if (!host) throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist`);
  const rows = await db
    .selectFrom('host_events')
    .select(['at', 'kind', 'detail'])
    .where('host_id', '=', host.id)
    .orderBy('at')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ at: new Date(r.at).toISOString(), kind: r.kind, detail: r.detail }));
}

/** A queued machine that has not asked again for three retry intervals has gone away (powered off): no longer counted as queued. */
function queueFreshSince(policy: BuildPolicy): Date {
  return new Date(Date.now() - policy.retrySeconds * 3000);
}

export async function siteBuilds(db: Db, siteName: string, policy: BuildPolicy): Promise<SiteBuilds> {
  const site = await db.selectFrom('sites').select(['id', 'build_cap']).where('name', '=', siteName).executeTakeFirst();
  if (!site) throw new KvmfleetError(ErrorCode.NotFound, `site "${siteName}" does not exist`);
  const base = db
    .selectFrom('hosts')
    .innerJoin('networks', 'networks.id', 'hosts.network_id')
    .where('networks.site_id', '=', site.id);
  const building = await base
    .select(['hosts.hostname', 'hosts.build_started_at'])
    .where('hosts.build_state', '=', 'building')
    .orderBy('hosts.build_started_at')
    .execute();
  const queued = await base
    .select(['hosts.hostname', 'hosts.queued_at'])
    .where('hosts.build_state', '=', 'ready')
    .where('hosts.queued_at', 'is not', null)
    .where('hosts.queue_seen_at', '>=', queueFreshSince(policy))
    .orderBy('hosts.queued_at')
    .execute();
  return {
    site: siteName,
    cap: site.build_cap,
    building: building.map((b) => ({ hostname: b.hostname, since: new Date(b.build_started_at!).toISOString() })),
    queued: queued.map((q, i) => ({
      hostname: q.hostname,
      position: i + 1,
      since: new Date(q.queued_at!).toISOString(),
    })),
  };
}

/** Build progress of every site in two grouped queries (the console's overview of thousands of hosts). */
export async function buildProgress(db: Db, policy: BuildPolicy): Promise<SiteProgress[]> {
  const sites = await db.selectFrom('sites').select(['id', 'name', 'build_cap']).orderBy('name').execute();
  const bySite = db.selectFrom('hosts').innerJoin('networks', 'networks.id', 'hosts.network_id');
  const states = await bySite
    .select(['networks.site_id', 'hosts.build_state', (eb) => eb.fn.countAll<string>().as('count')])
    .groupBy(['networks.site_id', 'hosts.build_state'])
    .execute();
  const queued = await bySite
    .select(['networks.site_id', (eb) => eb.fn.countAll<string>().as('count')])
    .where('hosts.build_state', '=', 'ready')
    .where('hosts.queued_at', 'is not', null)
    .where('hosts.queue_seen_at', '>=', queueFreshSince(policy))
    .groupBy('networks.site_id')
    .execute();
  return sites.map((site) => {
    const counts: Record<ProgressState, number> = {
      discovered: 0,
      ready: 0,
      queued: 0,
      building: 0,
      built: 0,
      failed: 0,
    };
    for (const row of states) if (row.site_id === site.id) counts[row.build_state] = Number(row.count);
    counts.queued = Number(queued.find((row) => row.site_id === site.id)?.count ?? 0);
    counts.ready -= counts.queued;
    const hosts = Object.values(counts).reduce((a, b) => a + b, 0);
    return { site: site.name, cap: site.build_cap, hosts, counts };
  });
}
