/**
 * Job progress for the live event stream, read from the store, so that a job run by a worker in
 * another process (the clustered topology) is followed like one run here. A job run in this
 * process is told at once by its JobRunner, before its row is written; what that said is noted,
 * and the store poll adds only what no local event has said — never an item twice, never a
 * finished job back to running.
 */
import type { Kysely } from 'kysely';
import type { Database, JobState } from '../store/schema.ts';
import type { JobEvent } from '../vms/job-model.ts';

const ACTIVE: readonly JobState[] = ['queued', 'running'];
const isActive = (state: JobState | undefined) => state === undefined || ACTIVE.includes(state);

export class JobProgressFeed {
  readonly #db: Kysely<Database>;
  /** Per job: how many items and which state the stream has told. */
  readonly #told = new Map<number, { done: number; state: JobState | undefined }>();

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Takes the jobs already running as told (their history is in GET /api/v1/jobs). */
  async sync(): Promise<void> {
    for (const row of await this.#db
      .selectFrom('jobs')
      .select(['id', 'state', 'done'])
      .where('state', 'in', ACTIVE)
      .execute())
      this.#told.set(row.id, { done: row.done, state: row.state });
  }

  /** A local JobRunner event is going out: remember it. */
  noteLocal(event: JobEvent): void {
    const told = this.#told.get(event.job);
    if (told && !isActive(told.state)) return;
    this.#told.set(event.job, { done: Math.max(told?.done ?? 0, event.done), state: event.state });
  }

  /** What the store shows that the stream has not told yet: one event per new item, then any change of state. */
  async poll(): Promise<JobEvent[]> {
    const following = [...this.#told].filter(([, t]) => isActive(t.state)).map(([id]) => id);
    let query = this.#db.selectFrom('jobs').select(['id', 'state', 'done', 'failed', 'total', 'results']);
    query = following.length
      ? query.where((eb) => eb.or([eb('state', 'in', ACTIVE), eb('id', 'in', following)]))
      : query.where('state', 'in', ACTIVE);
    const events: JobEvent[] = [];
    for (const row of await query.orderBy('id').execute()) {
      const told = this.#told.get(row.id) ?? { done: 0, state: undefined };
      if (!isActive(told.state)) continue; // finished, as told by a local event
      const results = row.results;
      let failed = results.slice(0, told.done).filter((r) => !r.ok).length;
      for (let i = told.done; i < Math.min(row.done, results.length); i++) {
        if (!results[i]!.ok) failed += 1;
        events.push({ job: row.id, state: 'running', done: i + 1, failed, total: row.total, item: results[i]! });
      }
      if (row.state !== told.state)
        events.push({ job: row.id, state: row.state, done: row.done, failed: row.failed, total: row.total });
      if (isActive(row.state) || row.state !== told.state)
        this.#told.set(row.id, { done: Math.max(told.done, row.done), state: row.state });
    }
    // Finished jobs need no following.
    for (const [id, t] of this.#told) if (!isActive(t.state)) this.#told.delete(id);
    return events;
  }
}
