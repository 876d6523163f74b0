/**
 * Long work as jobs: a row in the store (state, counts, per-item results) and progress events.
 * Bulk deploy: N clones of a template placed across a site's hypervisors (placement.ts), at most
 * `max_parallel` at a time on each hypervisor; one failed VM is reported and the rest go on.
 * A job is queued in the store by whichever node takes the request and run by a node with the
 * worker role, which claims it (FOR UPDATE SKIP LOCKED: one worker per job, however many).
 *
 * Jobs are leases: the worker renews its lease (database time) while it works; a job whose lease
 * ran out — its worker was killed, or lost the store — is claimed again by any worker (the same
 * one after a restart too) and resumed from its per-item results. An item without a result is
 * recovered first (VmService.recoverClone: a finished clone is recognised, a half-made one removed),
 * so no VM is made twice. `cancel` stops a job: items not started end as cancelled.
 * (pg-boss and graphile-worker were considered: both need a PostgreSQL server — LISTEN/NOTIFY,
 * session advisory locks over a pg.Pool — which the embedded store is not.)
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { CloneKind, Database, JobState } from '../store/schema.ts';
import type { Job, JobEvent, JobItemResult } from './job-model.ts';
import { getHypervisor } from './hypervisors.ts';
import type { VmService } from './vm-service.ts';
import { RE } from '../fleet/validate-names.ts';
import { Semaphore } from '../semaphore.ts';

export interface BulkCloneParams {
  readonly template: string;
  readonly count: number;
  /** VM names are PREFIX-001, PREFIX-002, … */
  readonly namePrefix: string;
  readonly kind: CloneKind;
  readonly site: string;
  /** Only these hypervisors of the site (default: all of them). */
  readonly hypervisors?: readonly string[];
  /** Every clone in this group goes to a different hypervisor. */
  readonly antiAffinity?: string;
  readonly start?: boolean;
  readonly serialLogDir?: string;
}

export interface JobRunnerOptions {
  /** This process runs queued jobs (the worker role); otherwise it only queues and reads them. */
  readonly work?: boolean;
  readonly pollMs?: number;
  /** How long a claim holds without renewal; renewed every third of it. */
  readonly leaseMs?: number;
}

export const DEFAULT_LEASE_MS = 30_000;
/** The error of an item a cancel kept from starting. */
export const CANCELLED = 'cancelled by an operator';

/**
 * What a job kind's runner is given (the bulk clone here; others register with `registerKind`, e.g.
 * bmc/site-power.ts): its parameters, the results earlier attempts recorded, and the lease's fence.
 * It records one result per item; the runner writes them, tells the progress, and ends the job
 * once every item has one.
 */
export interface JobContext {
  readonly id: number;
  readonly params: Record<string, unknown>;
  readonly total: number;
  /** Results recorded by earlier attempts (a resumed job): those items are done. */
  readonly prior: readonly JobItemResult[];
  readonly resuming: boolean;
  /** Start an item only while this is true: the lease surely holds and the worker is not stopping. */
  holds(): boolean;
  /** An operator asked to cancel: record the items not started with the CANCELLED error. */
  cancelled(): boolean;
  record(item: JobItemResult): void;
  /** Records an item a cancel kept from starting (its error is CANCELLED). */
  recordCancelled(name: string, hypervisor: string): void;
}

export type JobKindRunner = (ctx: JobContext) => Promise<void>;

export class JobRunner extends EventEmitter<{ progress: [JobEvent] }> {
  readonly #db: Kysely<Database>;
  readonly #vms: VmService;
  readonly #running = new Map<number, Promise<Job>>();
  readonly #kinds = new Map<string, JobKindRunner>();
  readonly #work: boolean;
  readonly #leaseMs: number;
  /** Who holds a lease: unique per process, readable by operators. */
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #stopped = false;

  constructor(db: Kysely<Database>, vms: VmService, options: JobRunnerOptions = {}) {
    super();
    this.#db = db;
    this.#vms = vms;
    this.#work = options.work ?? true;
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    if (this.#work) {
      this.#timer = setInterval(() => void this.#drain(), options.pollMs ?? 1000);
      this.#timer.unref();
    }
  }

  /**
   * Another kind of job this worker runs (claimed only by workers that registered it). Register
   * before the first poll, i.e. right after construction.
   */
  registerKind(kind: string, run: JobKindRunner): void {
    if (kind === 'bulk-clone' || this.#kinds.has(kind)) throw new Error(`job kind ${kind} is registered already`);
    this.#kinds.set(kind, run);
    if (this.#work) void this.#drain();
  }

  /** Queues a job of a registered kind with `total` items; returns it at once. */
  async enqueue(kind: string, total: number, params: Record<string, unknown>, actor = 'api'): Promise<Job> {
    const row = await this.#db
      .insertInto('jobs')
      .values({ kind, state: 'queued', total, params: JSON.stringify(params), results: '[]', actor })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (this.#work) void this.#drain();
    return this.get(row.id);
  }

  /** Stops claiming; jobs in hand stop starting items and keep their lease until it runs out, so another worker resumes them. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  #leaseInterval() {
    return sql<string>`now() + ${`${this.#leaseMs} milliseconds`}::interval`;
  }

  /** Claims and runs queued jobs (and jobs whose worker's lease ran out), one at a time per worker. */
  async #drain(): Promise<void> {
    if (this.#draining || this.#stopped) return;
    this.#draining = true;
    try {
      while (!this.#stopped) {
        const claimed = await this.#db.transaction().execute(async (trx) => {
          const row = await trx
            .selectFrom('jobs')
            .select(['id', 'kind', 'total', 'params', 'results', 'attempts', 'cancel_requested'])
            .where('kind', 'in', ['bulk-clone', ...this.#kinds.keys()])
            .where((eb) =>
              eb.or([
                eb('state', '=', 'queued'),
                eb.and([
                  eb('state', '=', 'running'),
                  eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', sql<Date>`now()`)]),
                ]),
              ]),
            )
            .orderBy('id')
            .limit(1)
            .forUpdate()
            .skipLocked()
            .executeTakeFirst();
          if (row) {
            await trx
              .updateTable('jobs')
              .set({
                state: 'running',
                lease_owner: this.workerId,
                lease_until: this.#leaseInterval(),
                attempts: row.attempts + 1,
              })
              .where('id', '=', row.id)
              .execute();
          }
          return row;
        });
        if (!claimed) return;
        const prior = claimed.results;
        const resuming = claimed.attempts > 0;
        const kind = this.#kinds.get(claimed.kind);
        let run: Promise<Job>;
        if (kind) {
          run = this.#runLeased(claimed.id, claimed.total, prior, (ctx) =>
            kind({ ...ctx, params: claimed.params, resuming }),
          );
        } else {
          const { names, placements, ...params } = claimed.params as unknown as BulkCloneParams & {
            names: string[];
            placements: string[];
          };
          run = this.#runBulk(claimed.id, params, names, placements, prior, resuming);
        }
        this.#running.set(claimed.id, run);
        await run.catch(() => undefined).finally(() => this.#running.delete(claimed.id));
      }
    } catch {
      /* the store is briefly unreachable: the next tick tries again */
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Cancels a job: a queued one at once; a running one stops starting items (those under way
   * finish) and ends as cancelled. A finished job is left as it is.
   */
  async cancel(id: number): Promise<Job> {
    const job = await this.get(id);
    if (job.state === 'queued') {
      await this.#db
        .updateTable('jobs')
        .set({ state: 'cancelled', cancel_requested: true, finished_at: new Date().toISOString() })
        .where('id', '=', id)
        .where('state', '=', 'queued')
        .execute();
    } else if (job.state === 'running') {
      await this.#db.updateTable('jobs').set({ cancel_requested: true }).where('id', '=', id).execute();
    }
    return this.get(id);
  }

  async get(id: number): Promise<Job> {
    const row = await this.#db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new KvmfleetError(ErrorCode.NotFound, `job ${id} does not exist`);
    return {
      id: row.id,
      kind: row.kind,
      state: row.state,
      total: row.total,
      done: row.done,
      failed: row.failed,
      results: row.results,
      createdAt: new Date(row.created_at).toISOString(),
      finishedAt: row.finished_at ? new Date(row.finished_at).toISOString() : null,
    };
  }

  async list(limit = 50): Promise<Job[]> {
    const ids = await this.#db.selectFrom('jobs').select('id').orderBy('id', 'desc').limit(limit).execute();
    return Promise.all(ids.map((r) => this.get(r.id)));
  }

  /** Resolves when the job ends (at once for a finished one). */
  async wait(id: number, pollMs = 250): Promise<Job> {
    for (;;) {
      const local = this.#running.get(id);
      if (local) return local;
      const job = await this.get(id);
      if (job.state !== 'queued' && job.state !== 'running') return job;
      await new Promise((r) => setTimeout(r, pollMs)); // run by another worker
    }
  }

  /** Checks, places every clone, records the job and starts it; returns the job at once. */
  async bulkClone(params: BulkCloneParams, actor = 'api'): Promise<Job> {
    if (!Number.isInteger(params.count) || params.count < 1 || params.count > 10_000)
      throw new KvmfleetError(ErrorCode.Validation, 'count must be 1–10000');
    if (!RE.namePrefix.test(params.namePrefix ?? ''))
      throw new KvmfleetError(
        ErrorCode.Validation,
        `name prefix "${params.namePrefix}" must be letters, digits, ".", "_" or "-" (at most 56)`,
      );
    const template = await this.#vms.getTemplate(params.template);
    const width = Math.max(3, String(params.count).length);
    const names = Array.from(
      { length: params.count },
      (_, i) => `${params.namePrefix}-${String(i + 1).padStart(width, '0')}`,
    );
    const demand = { memoryMiB: template.memoryMiB, vcpus: template.vcpus, antiAffinity: params.antiAffinity };
    const placements = await this.#vms.place(
      params.site,
      names.map(() => demand),
      params.hypervisors,
    );
    const row = await this.#db
      .insertInto('jobs')
      .values({
        kind: 'bulk-clone',
        state: 'queued',
        total: params.count,
        params: JSON.stringify({ ...params, names, placements }),
        results: '[]',
        actor,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (this.#work) void this.#drain();
    return this.get(row.id);
  }

  /** Runs the items of a bulk clone that have no result yet (`prior`: those recorded by earlier attempts). */
  async #runBulk(
    id: number,
    params: BulkCloneParams,
    names: string[],
    placements: string[],
    prior: readonly JobItemResult[],
    resuming: boolean,
  ): Promise<Job> {
    const limits = new Map<string, Semaphore>();
    for (const hv of new Set(placements))
      limits.set(hv, new Semaphore((await getHypervisor(this.#db, hv)).maxParallel));
    const finished = new Set(prior.map((r) => r.name));
    return this.#runLeased(id, names.length, prior, async ({ holds, cancelled, record }) => {
      await Promise.all(
        names.map((name, i) =>
          finished.has(name)
            ? undefined
            : limits.get(placements[i]!)!.run(async () => {
                if (!holds()) return; // another worker (or this one after a restart) goes on from here
                const hypervisor = placements[i]!;
                const started = Date.now();
                if (cancelled()) return record({ name, hypervisor, ok: false, error: CANCELLED, ms: 0 });
                try {
                  // Resumed: the previous attempt may have made this VM, or half of it.
                  if (resuming && (await this.#vms.recoverClone(name, hypervisor)) === 'complete')
                    return record({ name, hypervisor, ok: true, ms: Date.now() - started });
                  await this.#vms.clone({
                    template: params.template,
                    name,
                    kind: params.kind,
                    hypervisor,
                    ...(params.antiAffinity ? { antiAffinity: params.antiAffinity } : {}),
                    start: params.start ?? false,
                    ...(params.serialLogDir ? { serialLogDir: params.serialLogDir } : {}),
                  });
                  record({ name, hypervisor, ok: true, ms: Date.now() - started });
                } catch (error) {
                  record({ name, hypervisor, ok: false, error: (error as Error).message, ms: Date.now() - started });
                }
              }),
        ),
      );
    });
  }

  /**
   * Runs a job's remaining items under its lease (`work` records their results). Renews the lease
   * while it works; if the lease is lost (another worker took the job over after a store outage)
   * `holds()` turns false, so no more items start, and the end is left to that worker.
   */
  async #runLeased(
    id: number,
    total: number,
    prior: readonly JobItemResult[],
    work: (ctx: Omit<JobContext, 'params' | 'resuming'>) => Promise<void>,
  ): Promise<Job> {
    const results: JobItemResult[] = [...prior];
    let done = results.length;
    let failed = results.filter((r) => !r.ok).length;
    let held = true;
    let cancelled = false;
    let renewedAt = Date.now();
    // Fenced: an item starts only while the lease surely holds (renewed within two thirds of it),
    // so after a store outage the worker that took the job over is not racing this one.
    const holds = () => held && !this.#stopped && Date.now() - renewedAt < (this.#leaseMs * 2) / 3;
    // Renew the lease; read the cancel flag on the way. A renewal that finds the job no longer ours stops the run.
    const renew = async () => {
      if (this.#stopped) return; // a stopped worker lets its lease run out: another resumes the job
      try {
        const row = await this.#db
          .updateTable('jobs')
          .set({ lease_until: this.#leaseInterval() })
          .where('id', '=', id)
          .where('lease_owner', '=', this.workerId)
          .where('state', '=', 'running')
          .returning('cancel_requested')
          .executeTakeFirst();
        if (!row) held = false;
        else {
          renewedAt = Date.now();
          if (row.cancel_requested) cancelled = true;
        }
      } catch {
        /* the store is unreachable: the lease may run out; the next renewal tells */
      }
    };
    const heartbeat = setInterval(() => void renew(), Math.max(200, Math.floor(this.#leaseMs / 3)));
    heartbeat.unref();
    // Progress writes are serialised so the row never goes backwards; a failed write is retried
    // by the next one (each carries every result so far) and by the final write.
    let writing = Promise.resolve();
    const write = () => {
      const snapshot = { done, failed, results: JSON.stringify(results) };
      writing = writing.then(() =>
        this.#db
          .updateTable('jobs')
          .set(snapshot)
          .where('id', '=', id)
          .where('lease_owner', '=', this.workerId)
          .execute()
          .then(
            () => undefined,
            () => undefined,
          ),
      );
    };
    const record = (item: JobItemResult) => {
      results.push(item);
      done += 1;
      if (!item.ok) failed += 1;
      write();
      this.emit('progress', { job: id, state: 'running', done, failed, total, item });
    };
    try {
      await renew();
      const recordCancelled = (name: string, hypervisor: string) =>
        record({ name, hypervisor, ok: false, error: CANCELLED, ms: 0 });
      await work({ id, total, prior, holds, cancelled: () => cancelled, record, recordCancelled });
      await writing;
      if (!held || this.#stopped || results.length < total) return this.get(id);
      await renew();
      const state: JobState =
        cancelled || results.some((r) => r.error === CANCELLED)
          ? 'cancelled'
          : failed === 0
            ? 'succeeded'
            : failed === total
              ? 'failed'
              : 'partial';
      // The last write carries every result and the end, in one statement: a job whose items all ended ends.
      const ended = await this.#db
        .updateTable('jobs')
        .set({
          state,
          done,
          failed,
          results: JSON.stringify(results),
          finished_at: new Date().toISOString(),
          lease_owner: null,
        })
        .where('id', '=', id)
        .where('lease_owner', '=', this.workerId)
        .executeTakeFirst();
      if (Number(ended.numUpdatedRows) === 1) this.emit('progress', { job: id, state, done, failed, total });
      return this.get(id);
    } finally {
      clearInterval(heartbeat);
    }
  }
}
