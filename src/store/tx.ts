/** Transactions that change the inventory: one at a time (an advisory lock), so checks and writes agree. */
import { EventEmitter } from 'node:events';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.ts';

export type Db = Kysely<Database> | Transaction<Database>;

/** Any fixed key works; this one reads "kvmfleet" in ASCII-ish hex so it is recognisable in pg_locks. */
const INVENTORY_LOCK = 0x6b766d66;

/**
 * Told after every committed inventory change in this process, so that in-memory copies (the DHCP
 * role's view of networks and reservations) catch up at once rather than at their next timed refresh.
 */
export const inventoryEvents = new EventEmitter<{ changed: [] }>();
inventoryEvents.setMaxListeners(100);

export async function inventoryTransaction<T>(
  db: Kysely<Database>,
  work: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  const result = await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${INVENTORY_LOCK})`.execute(trx);
    return work(trx);
  });
  inventoryEvents.emit('changed');
  return result;
}
