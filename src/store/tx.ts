/** Transactions that change the inventory: one at a time (an advisory lock), so checks and writes agree. */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.ts';

export type Db = Kysely<Database> | Transaction<Database>;

/** Any fixed key works; this one reads "kvmfleet" in ASCII-ish hex so it is recognisable in pg_locks. */
const INVENTORY_LOCK = 0x6b766d66;

export function inventoryTransaction<T>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${INVENTORY_LOCK})`.execute(trx);
    return work(trx);
  });
}
