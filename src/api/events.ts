/**
 * The live event stream behind GET /api/v1/events (server-sent events) and `kvmfleet events`:
 * - host: every boot and build event (DHCP, TFTP, script, kernel, Kickstart, built …), read from the
 *   store, so events written by boot servers in other processes arrive too;
 * - activity: every few seconds, how many DHCP, TFTP, script, Kickstart and built events there were;
 * - job: bulk job progress — at once from jobs run in this process, and from the store (job-feed.ts)
 *   for jobs run by workers elsewhere;
 * - vm: VM state changes from libvirt (this process's connections).
 */
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { JobEvent } from '../vms/job-model.ts';
import type { JobRunner } from '../vms/jobs.ts';
import type { VmService, VmStateEvent } from '../vms/vm-service.ts';
import { JobProgressFeed } from './job-feed.ts';

export type LiveEvent =
  | { type: 'host'; host: string; kind: string; at: string; detail: Record<string, unknown> }
  | { type: 'activity'; seconds: number; counts: Record<string, number> }
  | ({ type: 'job' } & JobEvent)
  | ({ type: 'vm' } & VmStateEvent);

export const EVENT_TYPES = ['host', 'activity', 'job', 'vm'] as const;

/**
 * host_events ids come from a sequence when a row is inserted, but rows become visible when their
 * transaction commits, which on PostgreSQL may be out of id order: reading "id > cursor" alone
 * would skip a row that commits after a higher one was read. So the ids skipped over are kept as
 * gaps and asked for again until they appear or GAP_MS passes (a rolled-back insert leaves a gap
 * for good). Bounded: at most MAX_GAPS are remembered.
 */
export const GAP_MS = 30_000;
const MAX_GAPS = 10_000;

export class EventHub extends EventEmitter<{ event: [LiveEvent] }> {
  readonly #db: Kysely<Database>;
  #cursor = 0;
  /** id → when it was first missed. */
  readonly #gaps = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  #summary: NodeJS.Timeout | undefined;
  #counts: Record<string, number> = {};
  #polling = false;
  readonly #jobs: JobProgressFeed;

  constructor(
    db: Kysely<Database>,
    sources: { jobs?: JobRunner | undefined; vms?: VmService | undefined } = {},
    readonly pollMs = 1000,
    readonly summaryMs = 5000,
  ) {
    super();
    this.#db = db;
    this.#jobs = new JobProgressFeed(db);
    sources.jobs?.on('progress', (e) => {
      this.#jobs.noteLocal(e);
      this.emit('event', { type: 'job', ...e });
    });
    sources.vms?.on('state', (e) => this.emit('event', { type: 'vm', ...e }));
  }

  async start(): Promise<void> {
    const last = await this.#db
      .selectFrom('host_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    this.#cursor = Number(last?.id ?? 0); // live from now on: history is in the timelines
    await this.#jobs.sync();
    this.#timer = setInterval(() => void this.#poll(), this.pollMs);
    this.#summary = setInterval(() => this.#flushSummary(), this.summaryMs);
    this.#timer.unref();
    this.#summary.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    clearInterval(this.#summary);
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.listenerCount('event') === 0) return;
    this.#polling = true;
    try {
      const gaps = [...this.#gaps.keys()];
      const rows = await this.#db
        .selectFrom('host_events')
        .innerJoin('hosts', 'hosts.id', 'host_events.host_id')
        .select(['host_events.id', 'host_events.kind', 'host_events.at', 'host_events.detail', 'hosts.hostname'])
        .where((eb) =>
          gaps.length
            ? eb.or([eb('host_events.id', '>', this.#cursor), eb('host_events.id', 'in', gaps)])
            : eb('host_events.id', '>', this.#cursor),
        )
        .orderBy('host_events.id')
        .limit(5000)
        .execute();
      const now = Date.now();
      for (const row of rows) {
        if (this.#gaps.delete(row.id)) {
          // a late commit: told now
        } else if (row.id > this.#cursor) {
          for (let missing = this.#cursor + 1; missing < row.id && this.#gaps.size < MAX_GAPS; missing++)
            this.#gaps.set(missing, now);
          this.#cursor = row.id;
        } else continue;
        this.#counts[row.kind] = (this.#counts[row.kind] ?? 0) + 1;
        this.emit('event', {
          type: 'host',
          host: row.hostname,
          kind: row.kind,
          at: new Date(row.at).toISOString(),
          detail: row.detail,
        });
      }
      for (const [id, since] of this.#gaps) if (now - since > GAP_MS) this.#gaps.delete(id);
      for (const event of await this.#jobs.poll()) this.emit('event', { type: 'job', ...event });
    } catch {
      /* the store is briefly unreachable: the next poll catches up from the cursor */
    } finally {
      this.#polling = false;
    }
  }

  #flushSummary(): void {
    if (Object.keys(this.#counts).length === 0) return;
    this.emit('event', { type: 'activity', seconds: this.summaryMs / 1000, counts: this.#counts });
    this.#counts = {};
  }
}
