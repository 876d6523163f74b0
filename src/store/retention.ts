/**
 * Retention: host events, audit entries and finished jobs (their per-item results are in the job's
 * row) older than a configurable age are deleted by a periodic sweep, so no table grows without
 * bound under netboot storms and refused requests.
 *
 * - Ages are compared in the database's time (now()), like every other deadline here.
 * - Rows go in batches of at most `batch`, one statement (one short transaction) each, so a sweep
 *   never holds a long lock; on the embedded store other queries take their turn between batches.
 * - A host's timeline keeps the latest event of each kind however old, so the console still shows
 *   where each host's last install got to and when (console/src/timeline.ts reads the steps of the
 *   current attempt from these kinds).
 * - Deleting is idempotent: nodes sweeping at once only share the work.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from './schema.ts';
import { startPeriodic, type Periodic } from './periodic.ts';

export interface RetentionPolicy {
  /** Days kept; 0 keeps for ever. */
  readonly hostEventsDays: number;
  readonly auditDays: number;
  readonly jobsDays: number;
}

/** As Foreman keeps reports and Kea its lease history: weeks of boot events, a year of audit. */
export const DEFAULT_RETENTION: RetentionPolicy = { hostEventsDays: 30, auditDays: 365, jobsDays: 30 };
export const RETENTION_INTERVAL_MS = 10 * 60_000;
export const RETENTION_BATCH = 1000;

export interface RetentionResult {
  hostEvents: number;
  audit: number;
  jobs: number;
}

const FINISHED = sql`('succeeded', 'failed', 'partial', 'cancelled')`;

function olderThan(column: string, days: number): RawBuilder<unknown> {
  return sql`${sql.ref(column)} < now() - make_interval(days => ${days})`;
}

/** One batch's selection of ids to delete, per table. */
const selections = {
  hostEvents: (days: number, batch: number) => sql`
    delete from host_events where id in (
      select e.id from host_events e
      where ${olderThan('e.at', days)}
        and exists (select 1 from host_events later where later.host_id = e.host_id and later.kind = e.kind and later.id > e.id)
      limit ${batch})`,
  audit: (days: number, batch: number) => sql`
    delete from audit_log where id in (select id from audit_log where ${olderThan('at', days)} limit ${batch})`,
  jobs: (days: number, batch: number) => sql`
    delete from jobs where id in (select id from jobs where state in ${FINISHED} and ${olderThan('finished_at', days)} limit ${batch})`,
} as const;

async function deleteInBatches(
  db: Kysely<Database>,
  statement: (days: number, batch: number) => RawBuilder<unknown>,
  days: number,
  batch: number,
): Promise<number> {
  if (!(days > 0)) return 0;
  let deleted = 0;
  for (;;) {
    const result = await statement(days, batch).execute(db);
    const n = Number(result.numAffectedRows ?? 0n);
    deleted += n;
    if (n < batch) return deleted;
  }
}

/** One sweep of every table; returns how many rows went from each. */
export async function sweepRetention(
  db: Kysely<Database>,
  policy: RetentionPolicy,
  batch = RETENTION_BATCH,
): Promise<RetentionResult> {
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`a retention batch is a positive whole number, not ${batch}`);
  return {
    hostEvents: await deleteInBatches(db, selections.hostEvents, policy.hostEventsDays, batch),
    audit: await deleteInBatches(db, selections.audit, policy.auditDays, batch),
    jobs: await deleteInBatches(db, selections.jobs, policy.jobsDays, batch),
  };
}

const FIRST_SWEEP_AFTER_MS = 60_000;

export function startRetentionSweep(
  db: Kysely<Database>,
  policy: RetentionPolicy,
  onError: (error: unknown) => void,
  intervalMs = RETENTION_INTERVAL_MS,
): Periodic {
  // The first sweep a minute after start: a node restarted more often than the interval still sweeps.
  return startPeriodic(intervalMs, () => sweepRetention(db, policy), onError, FIRST_SWEEP_AFTER_MS);
}
