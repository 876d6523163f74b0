/** Sites: a place with its own boot servers and a cap on concurrent builds. */
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { inventoryTransaction, type Db } from '../store/tx.ts';
import type { Kysely, Selectable } from 'kysely';
import type { Site, SiteInput } from './model.ts';
import { RE } from './validate-names.ts';

const NAME = RE.siteName;
export const DEFAULT_BUILD_CAP = 20;

function toSite(row: Selectable<Database['sites']>): Site {
  return { name: row.name, description: row.description, buildCap: row.build_cap };
}

export function checkSiteInput(input: SiteInput): void {
  if (!NAME.test(input.name ?? ''))
    throw new KvmfleetError(
      ErrorCode.Validation,
      `site name "${input.name}" must be lower-case letters, digits and hyphens (at most 63)`,
    );
  if (input.buildCap !== undefined && !(Number.isInteger(input.buildCap) && input.buildCap >= 0)) {
    throw new KvmfleetError(ErrorCode.Validation, `buildCap must be a whole number ≥ 0, not ${input.buildCap}`);
  }
}

export async function listSites(db: Db): Promise<Site[]> {
  return (await db.selectFrom('sites').selectAll().orderBy('name').execute()).map(toSite);
}

export async function getSite(db: Db, name: string): Promise<Site> {
  const row = await db.selectFrom('sites').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.NotFound, `site "${name}" does not exist`);
  return toSite(row);
}

export async function siteIdOf(db: Db, name: string): Promise<number> {
  const row = await db.selectFrom('sites').select('id').where('name', '=', name).executeTakeFirst();
  if (!row) throw new KvmfleetError(ErrorCode.UnknownSite, `site "${name}" does not exist`);
  return row.id;
}

/** Inserts the site, or with upsert updates the one of that name. */
export async function putSite(trx: Db, input: SiteInput, mode: 'create' | 'upsert'): Promise<Site> {
  checkSiteInput(input);
  const values = {
    name: input.name,
    description: input.description ?? '',
    build_cap: input.buildCap ?? DEFAULT_BUILD_CAP,
  };
  const existing = await trx.selectFrom('sites').select('id').where('name', '=', input.name).executeTakeFirst();
  if (existing && mode === 'create')
    throw new KvmfleetError(ErrorCode.AlreadyExists, `site "${input.name}" already exists`);
  const row = existing
    ? await trx
        .updateTable('sites')
        .set({ description: values.description, build_cap: values.build_cap })
        .where('id', '=', existing.id)
        .returningAll()
        .executeTakeFirstOrThrow()
    : await trx.insertInto('sites').values(values).returningAll().executeTakeFirstOrThrow();
  return toSite(row);
}

export function createSite(db: Kysely<Database>, input: SiteInput): Promise<Site> {
  return inventoryTransaction(db, (trx) => putSite(trx, input, 'create'));
}

export function updateSite(db: Kysely<Database>, name: string, patch: Partial<Omit<SiteInput, 'name'>>): Promise<Site> {
  return inventoryTransaction(db, async (trx) => {
    const current = await getSite(trx, name);
    return putSite(trx, { ...current, ...patch, name }, 'upsert');
  });
}

export function deleteSite(db: Kysely<Database>, name: string): Promise<void> {
  return inventoryTransaction(db, async (trx) => {
    const id = await siteIdOf(trx, name).catch(() => {
      throw new KvmfleetError(ErrorCode.NotFound, `site "${name}" does not exist`);
    });
    const used = await trx.selectFrom('networks').select('name').where('site_id', '=', id).execute();
    if (used.length > 0)
      throw new KvmfleetError(
        ErrorCode.InUse,
        `site "${name}" still has ${used.length} network(s): ${used
          .map((n) => n.name)
          .slice(0, 5)
          .join(', ')}`,
      );
    // Hypervisors hold their site too (on delete restrict): refused here with a code, not by the store (500).
    const hypervisors = await trx.selectFrom('hypervisors').select('name').where('site_id', '=', id).execute();
    if (hypervisors.length > 0)
      throw new KvmfleetError(
        ErrorCode.InUse,
        `site "${name}" still has ${hypervisors.length} hypervisor(s): ${hypervisors
          .map((h) => h.name)
          .slice(0, 5)
          .join(', ')}`,
      );
    await trx.deleteFrom('sites').where('id', '=', id).execute();
  });
}
