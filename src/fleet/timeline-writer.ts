/**
 * Group commit of a host's timeline (host_events), as store/lease-writer.ts does for leases: the
 * events asked for within a short window go into one multi-row INSERT — one statement, so one
 * commit — and each caller's promise resolves only after that commit. A boot answer that follows
 * its event (the Kickstart after `kickstart`, the redirect after `kernel`) therefore never outruns
 * it: a crash loses no event whose answer went out. Under load the batches grow by themselves:
 * while one commit runs, the next window's events pile up behind it.
 *
 * One bad event never fails the others: events are checked before they join a batch, and if a
 * batch's statement still fails (a host deleted meanwhile, say), its events are retried one by one
 * so only the failing one is rejected.
 */
import { sql, type Kysely } from 'kysely';
import { integerLiteral, textLiteral } from '../store/literal.ts';
import type { Database } from '../store/schema.ts';
import type { HostEventKind } from './build-model.ts';

export class TimelineEventError extends Error {
  override readonly name = 'TimelineEventError';
}

export interface TimelineWriterOptions {
  /**
   * How long an event waits for company when no commit is running (ms). 0, the default: until the
   * end of the current turn of the event loop (the requests that arrived together go together).
   */
  readonly windowMs?: number;
  /** Most events in one INSERT. */
  readonly maxBatch?: number;
}

interface Pending {
  readonly hostId: number;
  readonly kind: HostEventKind;
  readonly detail: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** The largest detail (as JSON) one event may carry: events are small facts, not payloads. */
export const MAX_DETAIL_BYTES = 16 * 1024;
const KIND = /^[a-z][a-z-]{0,39}$/;
// What PostgreSQL's jsonb refuses even in valid JSON: NUL, and a lone surrogate. JSON.stringify
// writes exactly these (and nothing else of the kind) as \\u escapes; an escaped backslash is not one.
const JSONB_REFUSES = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** The detail as the JSON stored, or why it cannot be. */
function serialize(hostId: number, kind: string, detail: Record<string, unknown>): string | { problem: string } {
  if (!Number.isSafeInteger(hostId) || hostId <= 0) return { problem: `bad host id ${String(hostId)}` };
  if (typeof kind !== 'string' || !KIND.test(kind)) return { problem: `bad event kind ${JSON.stringify(kind)}` };
  let json: string | undefined;
  try {
    json = JSON.stringify(detail);
  } catch (error) {
    return { problem: `detail cannot be serialized: ${(error as Error).message}` };
  }
  if (json === undefined || !json.startsWith('{')) return { problem: 'detail is not an object' };
  if (json.length > MAX_DETAIL_BYTES) return { problem: `detail is larger than ${MAX_DETAIL_BYTES} bytes` };
  if (JSONB_REFUSES.test(json)) return { problem: 'detail has a NUL or an unpaired surrogate' };
  return json;
}

export class TimelineWriter {
  readonly #db: Kysely<Database>;
  readonly #windowMs: number;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  /** Cancels the pending start of a batch, while one is pending. */
  #cancelStart: (() => void) | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #running = false;
  readonly stats = { events: 0, commits: 0, invalid: 0, failedBatches: 0, failedRows: 0 };

  constructor(db: Kysely<Database>, options: TimelineWriterOptions = {}) {
    this.#db = db;
    this.#windowMs = Math.max(0, options.windowMs ?? 0);
    this.#maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
  }

  /** Resolves once the event is committed; rejects if it is refused or the store fails. */
  record(hostId: number, kind: HostEventKind, detail: Record<string, unknown> = {}): Promise<void> {
    const json = serialize(hostId, kind, detail);
    if (typeof json !== 'string') {
      this.stats.invalid += 1;
      return Promise.reject(
        new TimelineEventError(`event ${String(kind)} of host ${hostId} not stored: ${json.problem}`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ hostId, kind, detail: json, resolve, reject });
      if (!this.#running && !this.#cancelStart) this.#scheduleStart();
    });
  }

  #scheduleStart(): void {
    if (this.#windowMs === 0) {
      const immediate = setImmediate(() => this.#run());
      this.#cancelStart = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(() => this.#run(), this.#windowMs);
      this.#cancelStart = () => clearTimeout(timer);
    }
  }

  #run(): void {
    this.#cancelStart = undefined;
    this.#running = true;
    this.#flushing = (async () => {
      try {
        while (this.#queue.length > 0) await this.#flush();
      } finally {
        this.#running = false;
      }
    })();
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (batch.length === 0) return;
    try {
      await insert(this.#db, batch);
      this.stats.commits += 1;
      this.stats.events += batch.length;
      for (const pending of batch) pending.resolve();
    } catch {
      this.stats.failedBatches += 1;
      for (const pending of batch) {
        try {
          await insert(this.#db, [pending]);
          this.stats.commits += 1;
          this.stats.events += 1;
          pending.resolve();
        } catch (error) {
          this.stats.failedRows += 1;
          pending.reject(new Error(`event ${pending.kind} of host ${pending.hostId} not stored`, { cause: error }));
        }
      }
    }
  }

  /** Waits until everything recorded so far is committed or refused (shutdown). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#cancelStart || this.#running) {
      if (this.#cancelStart && !this.#running) {
        // No reason to wait out the window at shutdown.
        this.#cancelStart();
        this.#run();
      }
      await this.#flushing;
    }
  }
}

/**
 * One statement, so one commit, for the whole batch; rows get their ids (and times) in order.
 * Its values are literals (checked above: a positive integer, a kind of [a-z-], JSON without NUL),
 * so it goes without parameters, in one message.
 */
async function insert(db: Kysely<Database>, batch: readonly Pending[]): Promise<void> {
  const rows = batch.map(
    (p) => `(${integerLiteral(p.hostId)}, ${textLiteral(p.kind)}, ${textLiteral(p.detail)}::jsonb)`,
  );
  await sql.raw(`insert into host_events (host_id, kind, detail) values ${rows.join(', ')}`).execute(db);
}
