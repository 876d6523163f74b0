/** The audit log: every mutating API call — who, what, on what, when, and how it ended. */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

export interface AuditEntry {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly result: string;
  readonly detail: Record<string, unknown>;
}

/** The result of an entry written before its call ran, until the answer is known. */
export const AUDIT_PENDING = 'pending';

/**
 * Text as the store can hold it: NUL (which PostgreSQL text and jsonb refuse) and other control
 * characters are written as \uXXXX, and very long values are cut, so a hostile input cannot make
 * its own audit row fail.
 */
export function auditText(value: string, max = 2048): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

const cleanDetail = (detail: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(detail).map(([k, v]) => [k, typeof v === 'string' ? auditText(v) : v]));

/** Writes an entry; returns its id (so a pending entry can be completed). */
export async function recordAudit(db: Kysely<Database>, entry: Omit<AuditEntry, 'at'>): Promise<number> {
  const row = await db
    .insertInto('audit_log')
    .values({
      actor: auditText(entry.actor, 256),
      action: auditText(entry.action, 512),
      target: auditText(entry.target, 512),
      result: auditText(entry.result, 64),
      detail: JSON.stringify(cleanDetail(entry.detail)),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Completes an entry written as pending: how the call ended. */
export async function completeAudit(db: Kysely<Database>, id: number, result: string): Promise<void> {
  await db
    .updateTable('audit_log')
    .set({ result: auditText(result, 64) })
    .where('id', '=', id)
    .execute();
}

export async function listAudit(
  db: Kysely<Database>,
  filter: { actor?: string; limit?: number } = {},
): Promise<AuditEntry[]> {
  let q = db
    .selectFrom('audit_log')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(Math.min(filter.limit ?? 100, 10_000));
  if (filter.actor) q = q.where('actor', '=', filter.actor);
  return (await q.execute()).map((r) => ({
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    target: r.target,
    result: r.result,
    detail: r.detail,
  }));
}
