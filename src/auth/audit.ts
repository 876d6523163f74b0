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

export async function recordAudit(db: Kysely<Database>, entry: Omit<AuditEntry, 'at'>): Promise<void> {
  await db.insertInto('audit_log').values({ actor: entry.actor, action: entry.action, target: entry.target, result: entry.result, detail: JSON.stringify(entry.detail) }).execute();
}

export async function listAudit(db: Kysely<Database>, filter: { actor?: string; limit?: number } = {}): Promise<AuditEntry[]> {
  let q = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(Math.min(filter.limit ?? 100, 10_000));
  if (filter.actor) q = q.where('actor', '=', filter.actor);
  return (await q.execute()).map((r) => ({ at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, target: r.target, result: r.result, detail: r.detail as unknown as Record<string, unknown> }));
}
