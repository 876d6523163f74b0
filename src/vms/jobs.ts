/**
 * Long work as jobs: a row in the store (state, counts, per-item results) and progress events.
 * Bulk deploy: N clones of a template placed across a site's hypervisors (placement.ts), at most
 * `max_parallel` at a time on each hypervisor; one failed VM is reported and the rest go on.
 * A job is queued in the store by whichever node takes the request and run by a node with the
 * worker role, which claims it (FOR UPDATE SKIP LOCKED: one worker per job, however many).
 */
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { CloneKind, Database, JobState } from '../store/schema.ts';
import type { Job, JobEvent, JobItemResult } from './job-model.ts';
import { getHypervisor } from './hypervisors.ts';
import type { VmService } from './vm-service.ts';

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

/** A counting semaphore: at most `limit` holders at a time. */
class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

export class JobRunner extends EventEmitter<{ progress: [JobEvent] }> {
  readonly #db: Kysely<Database>;
  readonly #vms: VmService;
  readonly #running = new Map<number, Promise<Job>>();
  readonly #work: boolean;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;

  /** `work`: this process runs queued jobs (the worker role); otherwise it only queues and reads them. */
  constructor(db: Kysely<Database>, vms: VmService, options: { work?: boolean; pollMs?: number } = {}) {
    super();
    this.#db = db;
    this.#vms = vms;
    this.#work = options.work ?? true;
    if (this.#work) {
      this.#timer = setInterval(() => void this.#drain(), options.pollMs ?? 1000);
      this.#timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Claims and runs queued jobs, one at a time per worker, until none is left. */
  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (;;) {
        const claimed = await this.#db.transaction().execute(async (trx) => {
          const row = await trx.selectFrom('jobs').select(['id', 'params']).where('state', '=', 'queued').orderBy('id').limit(1).forUpdate().skipLocked().executeTakeFirst();
          if (row) await trx.updateTable('jobs').set({ state: 'running' }).where('id', '=', row.id).execute();
          return row;
        });
        if (!claimed) return;
        const { names, placements, ...params } = claimed.params as unknown as BulkCloneParams & { names: string[]; placements: string[] };
        const run = this.#runBulk(claimed.id, params, names, placements);
        this.#running.set(claimed.id, run);
        await run.catch(() => undefined).finally(() => this.#running.delete(claimed.id));
      }
    } catch {
      /* the store is briefly unreachable: the next tick tries again */
    } finally {
      this.#draining = false;
    }
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
      results: row.results as unknown as JobItemResult[],
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
    if (!Number.isInteger(params.count) || params.count < 1 || params.count > 10_000) throw new KvmfleetError(ErrorCode.Validation, 'count must be 1–10000');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,55}$/.test(params.namePrefix ?? '')) throw new KvmfleetError(ErrorCode.Validation, `name prefix "${params.namePrefix}" must be letters, digits, ".", "_" or "-" (at most 56)`);
    const template = await this.#vms.getTemplate(params.template);
    const width = Math.max(3, String(params.count).length);
    const names = Array.from({ length: params.count }, (_, i) => `${params.namePrefix}-${String(i + 1).padStart(width, '0')}`);
    const demand = { memoryMiB: template.memoryMiB, vcpus: template.vcpus, antiAffinity: params.antiAffinity };
    const placements = await this.#vms.place(params.site, names.map(() => demand), params.hypervisors);
    const row = await this.#db
      .insertInto('jobs')
      .values({ kind: 'bulk-clone', state: 'queued', total: params.count, params: JSON.stringify({ ...params, names, placements }), results: '[]', actor })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (this.#work) void this.#drain();
    return this.get(row.id);
  }

  async #runBulk(id: number, params: BulkCloneParams, names: string[], placements: string[]): Promise<Job> {
    const limits = new Map<string, Semaphore>();
    for (const hv of new Set(placements)) limits.set(hv, new Semaphore((await getHypervisor(this.#db, hv)).maxParallel));
    const results: JobItemResult[] = [];
    let done = 0;
    let failed = 0;
    // Progress writes are serialised so the row never goes backwards.
    let writing = Promise.resolve();
    const record = (item: JobItemResult) => {
      results.push(item);
      done += 1;
      if (!item.ok) failed += 1;
      const snapshot = { done, failed, results: JSON.stringify(results) };
      writing = writing.then(() => this.#db.updateTable('jobs').set(snapshot).where('id', '=', id).execute().then(() => undefined));
      this.emit('progress', { job: id, state: 'running', done, failed, total: names.length, item });
    };
    await Promise.all(
      names.map((name, i) =>
        limits.get(placements[i]!)!.run(async () => {
          const started = Date.now();
          try {
            await this.#vms.clone({ template: params.template, name, kind: params.kind, hypervisor: placements[i]!, ...(params.antiAffinity ? { antiAffinity: params.antiAffinity } : {}), start: params.start ?? false, ...(params.serialLogDir ? { serialLogDir: params.serialLogDir } : {}) });
            record({ name, hypervisor: placements[i]!, ok: true, ms: Date.now() - started });
          } catch (error) {
            record({ name, hypervisor: placements[i]!, ok: false, error: (error as Error).message, ms: Date.now() - started });
          }
        }),
      ),
    );
    await writing;
    const state: JobState = failed === 0 ? 'succeeded' : failed === names.length ? 'failed' : 'partial';
    await this.#db.updateTable('jobs').set({ state, finished_at: new Date().toISOString() }).where('id', '=', id).execute();
    this.emit('progress', { job: id, state, done, failed, total: names.length });
    return this.get(id);
  }
}
