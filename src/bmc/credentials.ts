/**
 * BMC credentials of hosts: where a host's BMC is, who logs in, and the password — the host's own
 * (hosts.bmc_secret) or a credentials set shared by many hosts (bmc_credentials, named in
 * hosts.bmc.credentials). Passwords are sealed by the keyring before they reach the store and are
 * opened only by loginFor(), for the one call that needs them; every view says `passwordSet` only.
 */
import { sql, type Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Db } from '../store/tx.ts';
import type { Bmc, Database } from '../store/schema.ts';
import type { Keyring } from './secret-box.ts';

export const BMC_TYPES = ['ipmi', 'redfish'] as const;
export type BmcType = (typeof BMC_TYPES)[number];
const DEFAULT_PORT: Record<BmcType, number> = { ipmi: 623, redfish: 443 };
/** IPMI v2.0 passwords are at most 20 bytes (RAKP keys are 20 bytes), user names 16. */
const IPMI_MAX_PASSWORD = 20;
const IPMI_MAX_USER = 16;
const SET_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export interface BmcView {
  readonly type: string;
  readonly address: string;
  readonly username: string | null;
  readonly credentials: string | null;
  readonly passwordSet: boolean;
  /** Redfish only, shown when set. */
  readonly insecure?: true;
  readonly caFile?: string;
}

export interface CredentialSetView {
  readonly name: string;
  readonly username: string;
  readonly passwordSet: true;
  readonly hosts: number;
}

export interface BmcSettings {
  readonly type: BmcType;
  readonly address: string;
  readonly username?: string | undefined;
  /** The host's own password (sealed before it is stored); omitted: keep the stored one. */
  readonly password?: string | undefined;
  /** A credentials set instead of the host's own user and password; null: stop using one. */
  readonly credentials?: string | null | undefined;
  /** Redfish: skip certificate checks (true), check them again (false); omitted: keep. */
  readonly insecure?: boolean | undefined;
  /** Redfish: an absolute path to a PEM CA file; null: back to the default; omitted: keep. */
  readonly caFile?: string | null | undefined;
}

/** Everything a protocol client needs for one call. Never logged, never answered. */
export interface BmcLogin {
  readonly type: BmcType;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** Redfish TLS: the host's own CA file, and `insecure` when the certificate is not checked. */
  readonly insecure?: true;
  readonly caFile?: string;
}

const hostContext = (id: number) => `host:${id}`;
const setContext = (name: string) => `bmc_credentials:${name}`;
const invalid = (message: string, field: string) => new KvmfleetError(ErrorCode.Validation, message, { field });

/** `host`, `host:port`, `a.b.c.d:port` or `[v6]:port`; the port defaults by type. */
export function parseBmcAddress(address: string, type: BmcType): { host: string; port: number } {
  const m =
    /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(address) ?? /^([A-Za-z0-9.-]{1,253})(?::(\d{1,5}))?$/.exec(address);
  if (!m) throw invalid(`BMC address "${address}" is not HOST, HOST:PORT or [IPv6]:PORT`, 'address');
  const port = m[2] === undefined ? DEFAULT_PORT[type] : Number(m[2]);
  if (port < 1 || port > 65535) throw invalid(`BMC port ${m[2]} is not 1 to 65535`, 'address');
  return { host: m[1]!, port };
}

function checkSecret(type: BmcType | undefined, username: string | undefined, password: string | undefined): void {
  if (username !== undefined && (!username || /[\x00-\x1f\x7f]/.test(username)))
    throw invalid('the BMC user name is empty or has control characters', 'username');
  if (password !== undefined && !password) throw invalid('the BMC password is empty', 'password');
  if (type === 'ipmi') {
    if (username !== undefined && Buffer.byteLength(username) > IPMI_MAX_USER)
      throw invalid(`an IPMI user name is at most ${IPMI_MAX_USER} bytes`, 'username');
    if (password !== undefined && Buffer.byteLength(password) > IPMI_MAX_PASSWORD)
      throw invalid(`an IPMI v2.0 password is at most ${IPMI_MAX_PASSWORD} bytes`, 'password');
  }
}

function checkTls(settings: BmcSettings): void {
  if (settings.type !== 'redfish' && (settings.insecure || settings.caFile))
    throw invalid('insecure and caFile are Redfish settings (HTTPS); an IPMI BMC has no certificate', 'insecure');
  if (
    typeof settings.caFile === 'string' &&
    (!settings.caFile.startsWith('/') || /[\x00-\x1f\x7f]/.test(settings.caFile))
  )
    throw invalid('the BMC CA file must be an absolute path', 'caFile');
  if (settings.insecure && typeof settings.caFile === 'string')
    throw invalid('give a CA file or insecure, not both', 'caFile');
}

async function hostRow(db: Db, hostname: string) {
  const row = await db
    .selectFrom('hosts')
    .select(['id', 'bmc', 'bmc_secret'])
    .where('hostname', '=', hostname)
    .executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `host ${hostname} does not exist`);
  return row;
}

function viewOf(bmc: Bmc | null, secret: string | null): BmcView | null {
  if (!bmc) return null;
  return {
    type: bmc.type,
    address: bmc.address,
    username: bmc.username ?? null,
    credentials: bmc.credentials ?? null,
    passwordSet: !!secret || !!bmc.credentials,
    ...(bmc.insecure ? { insecure: true as const } : {}),
    ...(bmc.caFile ? { caFile: bmc.caFile } : {}),
  };
}

export async function getHostBmc(db: Db, hostname: string): Promise<BmcView | null> {
  const row = await hostRow(db, hostname);
  return viewOf(row.bmc, row.bmc_secret);
}

/** The rules a host's BMC settings obey, wherever they come from (this API, a host record, a CSV import). */
export function checkBmcSettings(settings: BmcSettings): void {
  if (!(BMC_TYPES as readonly string[]).includes(settings.type))
    throw invalid(`BMC type "${settings.type}" is not ${BMC_TYPES.join(' or ')}`, 'type');
  parseBmcAddress(settings.address, settings.type);
  checkSecret(settings.type, settings.username, settings.password);
  if (settings.credentials && settings.password !== undefined)
    throw invalid('give a password or a credentials set, not both', 'password');
  checkTls(settings);
}

export async function setHostBmc(
  db: Kysely<Database>,
  keyring: () => Keyring,
  hostname: string,
  settings: BmcSettings,
): Promise<BmcView> {
  checkBmcSettings(settings);
  return db.transaction().execute(async (trx) => {
    const row = await hostRow(trx, hostname);
    const previous = row.bmc;
    // A password of its own replaces a credentials set the host used; otherwise the set stays unless changed.
    const keepSet = settings.credentials === undefined && settings.password === undefined;
    const credentials = keepSet ? previous?.credentials : (settings.credentials ?? undefined);
    if (credentials) {
      const set = await trx
        .selectFrom('bmc_credentials')
        .select('name')
        .where('name', '=', credentials)
        .executeTakeFirst();
      if (!set)
        throw new KvmfleetError(ErrorCode.NotFound, `BMC credentials set ${credentials} does not exist`, {
          field: 'credentials',
        });
    }
    const username = settings.username ?? previous?.username;
    // TLS settings are Redfish's: kept while the type stays redfish, dropped with a change to ipmi.
    const redfish = settings.type === 'redfish';
    // One of the two wins: a CA file given turns checks back on, insecure given drops the CA file.
    const insecure = redfish && (settings.caFile ? false : (settings.insecure ?? previous?.insecure ?? false));
    const caFile =
      redfish && !insecure ? (settings.caFile === null ? undefined : (settings.caFile ?? previous?.caFile)) : undefined;
    const bmc: Bmc = {
      type: settings.type,
      address: settings.address,
      ...(username ? { username } : {}),
      ...(credentials ? { credentials } : {}),
      ...(insecure ? { insecure } : {}),
      ...(caFile ? { caFile } : {}),
    };
    // A credentials set replaces the host's own password; a new password replaces the stored one.
    const secret = credentials
      ? null
      : settings.password !== undefined
        ? keyring().seal(settings.password, hostContext(row.id))
        : row.bmc_secret;
    await trx
      .updateTable('hosts')
      .set({ bmc: JSON.stringify(bmc), bmc_secret: secret })
      .where('id', '=', row.id)
      .execute();
    return viewOf(bmc, secret)!;
  });
}

export async function clearHostBmc(db: Kysely<Database>, hostname: string): Promise<void> {
  const row = await hostRow(db, hostname);
  await db.updateTable('hosts').set({ bmc: 'null', bmc_secret: null }).where('id', '=', row.id).execute();
}

async function usage(db: Db): Promise<Map<string, number>> {
  const name = sql<string>`bmc->>'credentials'`;
  const rows = await db
    .selectFrom('hosts')
    .select([name.as('name'), sql<string>`count(*)`.as('n')])
    .where(name, 'is not', null)
    .groupBy(name)
    .execute();
  return new Map(rows.map((r) => [r.name, Number(r.n)]));
}

export async function listCredentialSets(db: Db): Promise<CredentialSetView[]> {
  const used = await usage(db);
  const rows = await db.selectFrom('bmc_credentials').select(['name', 'username']).orderBy('name').execute();
  return rows.map((r) => ({ name: r.name, username: r.username, passwordSet: true, hosts: used.get(r.name) ?? 0 }));
}

export async function putCredentialSet(
  db: Kysely<Database>,
  keyring: () => Keyring,
  name: string,
  input: { username: string; password: string },
): Promise<CredentialSetView> {
  if (!SET_NAME.test(name)) throw invalid(`credentials set name "${name}" must match ${SET_NAME.source}`, 'name');
  // The set does not know which BMC types use it: hold it to IPMI's limits, the tighter ones.
  checkSecret('ipmi', input.username, input.password);
  const secret = keyring().seal(input.password, setContext(name));
  await db
    .insertInto('bmc_credentials')
    .values({ name, username: input.username, secret })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({ username: input.username, secret, updated_at: new Date().toISOString() }),
    )
    .execute();
  return { name, username: input.username, passwordSet: true, hosts: (await usage(db)).get(name) ?? 0 };
}

export async function deleteCredentialSet(db: Kysely<Database>, name: string): Promise<void> {
  const users = (await usage(db)).get(name) ?? 0;
  if (users) throw new KvmfleetError(ErrorCode.InUse, `BMC credentials set ${name} is used by ${users} host(s)`);
  const { numDeletedRows } = await db.deleteFrom('bmc_credentials').where('name', '=', name).executeTakeFirst();
  if (!numDeletedRows) throw new KvmfleetError(ErrorCode.NotFound, `BMC credentials set ${name} does not exist`);
}

const tlsOf = (bmc: Bmc) => ({
  ...(bmc.insecure ? { insecure: true as const } : {}),
  ...(bmc.caFile ? { caFile: bmc.caFile } : {}),
});

/** The host's BMC login, password opened for this call only. */
export async function loginFor(db: Db, keyring: () => Keyring, hostname: string): Promise<BmcLogin> {
  const row = await hostRow(db, hostname);
  const bmc = row.bmc;
  if (!bmc)
    throw new KvmfleetError(
      ErrorCode.NoBmc,
      `host ${hostname} has no BMC (kvmfleet host set ${hostname} --bmc-type … --bmc-address …)`,
    );
  const type = bmc.type as BmcType;
  if (!(BMC_TYPES as readonly string[]).includes(type))
    throw new KvmfleetError(
      ErrorCode.BmcUnsupported,
      `host ${hostname}'s BMC type "${bmc.type}" is not ${BMC_TYPES.join(' or ')}`,
    );
  const { host, port } = parseBmcAddress(bmc.address, type);
  if (bmc.credentials) {
    const set = await db
      .selectFrom('bmc_credentials')
      .select(['username', 'secret'])
      .where('name', '=', bmc.credentials)
      .executeTakeFirst();
    if (!set)
      throw new KvmfleetError(
        ErrorCode.NoBmc,
        `host ${hostname}'s BMC credentials set ${bmc.credentials} does not exist`,
      );
    return {
      type,
      host,
      port,
      ...tlsOf(bmc),
      username: bmc.username ?? set.username,
      password: keyring().open(set.secret, setContext(bmc.credentials)),
    };
  }
  if (!row.bmc_secret)
    throw new KvmfleetError(
      ErrorCode.NoBmc,
      `host ${hostname}'s BMC has no password (kvmfleet host set ${hostname} --bmc-password-stdin)`,
    );
  if (!bmc.username) throw new KvmfleetError(ErrorCode.NoBmc, `host ${hostname}'s BMC has no user name (--bmc-user)`);
  return {
    type,
    host,
    port,
    ...tlsOf(bmc),
    username: bmc.username,
    password: keyring().open(row.bmc_secret, hostContext(row.id)),
  };
}

export async function anySealed(db: Db): Promise<boolean> {
  const host = await db
    .selectFrom('hosts')
    .select('id')
    .where('bmc_secret', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return !!host || !!(await db.selectFrom('bmc_credentials').select('id').limit(1).executeTakeFirst());
}

/**
 * Re-seals every secret not sealed by the keyring's current key (key rotation). Returns how many
 * were re-sealed and how many still need a key the ring lacks (they stay as they are).
 */
export async function resealAll(
  db: Kysely<Database>,
  keyring: Keyring,
): Promise<{ resealed: number; unopenable: number }> {
  let resealed = 0;
  let unopenable = 0;
  const reseal = (sealed: string, context: string): string | undefined => {
    if (keyring.keyIdOf(sealed) === keyring.currentId) return undefined;
    try {
      return keyring.seal(keyring.open(sealed, context), context);
    } catch {
      unopenable += 1;
      return undefined;
    }
  };
  await db.transaction().execute(async (trx) => {
    for (const host of await trx
      .selectFrom('hosts')
      .select(['id', 'bmc_secret'])
      .where('bmc_secret', 'is not', null)
      .execute()) {
      const next = reseal(host.bmc_secret!, hostContext(host.id));
      if (!next) continue;
      await trx.updateTable('hosts').set({ bmc_secret: next }).where('id', '=', host.id).execute();
      resealed += 1;
    }
    for (const set of await trx.selectFrom('bmc_credentials').select(['name', 'secret']).execute()) {
      const next = reseal(set.secret, setContext(set.name));
      if (!next) continue;
      await trx.updateTable('bmc_credentials').set({ secret: next }).where('name', '=', set.name).execute();
      resealed += 1;
    }
  });
  return { resealed, unopenable };
}
