/**
 * Group commit of leases: every write asked for within a short window goes into one transaction,
 * and each caller's promise resolves only after that transaction committed. The DHCP server sends
 * an ACK only then, so a crash never loses an ACKed lease; batching keeps the commit rate sane.
 *
 * The store is the arbiter of who holds an address: a row changes owner (client id, else MAC) only
 * when the address is free — released, expired, past its expiry (a decline's expiry is the end of
 * its probation), or never leased — in the one conditional upsert below. Two servers on one store,
 * a partition or a bug in memory can then never bind one address to two clients: the loser's
 * write resolves `false` and that client alone is refused.
 *
 * One bad record never fails the others: records are validated before they join a batch, and if a
 * batch's transaction still fails, its records are retried one by one so only the failing one is
 * rejected.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, LeaseState } from './schema.ts';

export interface LeaseRecord {
  readonly ip: string;
  readonly networkId: number;
  readonly mac: string;
  /** Option 61 as hex; with it, the lease is the client identifier's, else the MAC's. */
  readonly clientId: string | null;
  readonly hostname: string | null;
  readonly state: LeaseState;
  readonly expiresAt: Date;
}

export class LeaseRecordError extends Error {
  override readonly name = 'LeaseRecordError';
}

interface Pending {
  record: LeaseRecord;
  resolve: (written: boolean) => void;
  reject: (error: unknown) => void;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const HEX = /^(?:[0-9a-f]{2}){1,255}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a record cannot be stored, or undefined. Text PostgreSQL would refuse (NUL) never reaches a batch. */
export function leaseRecordProblem(r: LeaseRecord): string | undefined {
  if (!IPV4.test(r.ip) || r.ip.split('.').some((p) => Number(p) > 255)) return `bad address ${JSON.stringify(r.ip)}`;
  if (!MAC.test(r.mac)) return `bad MAC ${JSON.stringify(r.mac)}`;
  if (r.clientId !== null && !HEX.test(r.clientId)) return 'client id is not hex';
  if (
    r.hostname !== null &&
    (r.hostname.length > 255 || /[\u0000-\u001f\u007f]/.test(r.hostname) || LONE_SURROGATE.test(r.hostname))
  )
    return 'host name has control characters or is too long';
  if (!Number.isFinite(r.expiresAt.getTime())) return 'bad expiry';
  return undefined;
}

const stripMask = (ip: string) => ip.replace(/\/32$/, '');

export class LeaseWriter {
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #running = false;
  readonly stats = { writes: 0, commits: 0, refused: 0, invalid: 0, failedBatches: 0, failedRows: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly windowMs = 2,
    private readonly maxBatch = 500,
  ) {}

  /** Resolves true once committed, false when the address is another client's; rejects on a store error. */
  write(record: LeaseRecord): Promise<boolean> {
    const problem = leaseRecordProblem(record);
    if (problem) {
      this.stats.invalid += 1;
      return Promise.reject(new LeaseRecordError(`lease ${record.ip} for ${record.mac} not stored: ${problem}`));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, resolve, reject });
      // Writes asked for within windowMs go together; while a commit runs, they pile up for the next.
      if (!this.#running && !this.#timer) this.#timer = setTimeout(() => this.#run(), this.windowMs);
    });
  }

  #run(): void {
    this.#timer = undefined;
    this.#running = true;
    this.#flushing = (async () => {
      await this.#flush();
      this.#running = false;
      // The embedded store commits on this thread: a commit started at once after the last would
      // find only the few requests read in between. Waiting windowMs lets the queued datagrams be
      // read, so a busy server commits fewer, bigger batches (each commit has a fixed cost).
      if (this.#queue.length > 0 && !this.#timer)
        this.#timer = setTimeout(() => this.#run(), this.#queue.length >= this.maxBatch ? 0 : this.windowMs);
    })();
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    try {
      // One statement cannot touch a row twice: writes of one address go in successive rounds, in
      // order, in one transaction. The usual batch is one round: one statement, atomic by itself and
      // committed when it returns (no BEGIN and COMMIT round trips, each a query's fixed cost).
      const batchRounds = rounds(batch);
      const written =
        batchRounds.length === 1
          ? new Set(await upsert(this.db, batch))
          : await this.db.transaction().execute(async (trx) => {
              const applied = new Set<Pending>();
              for (const round of batchRounds) for (const p of await upsert(trx, round)) applied.add(p);
              return applied;
            });
      this.stats.commits += 1;
      for (const pending of batch) this.#settle(pending, written.has(pending));
    } catch {
      // Isolate the culprit: each record alone, so one refused value fails one client only.
      this.stats.failedBatches += 1;
      for (const pending of batch) {
        try {
          const applied = await upsert(this.db, [pending]);
          this.#settle(pending, applied.length === 1);
        } catch (error) {
          this.stats.failedRows += 1;
          pending.reject(
            new Error(`lease ${pending.record.ip} for ${pending.record.mac} not stored`, { cause: error }),
          );
        }
      }
    }
  }

  #settle(pending: Pending, written: boolean): void {
    if (written) this.stats.writes += 1;
    else this.stats.refused += 1;
    pending.resolve(written);
  }

  /** Waits for everything queued so far to be committed (shutdown). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#timer || this.#running) {
      await new Promise((r) => setTimeout(r, this.windowMs + 1));
    }
    await this.#flushing;
  }
}

function rounds(batch: Pending[]): Pending[][] {
  const out: Pending[][] = [];
  const next = new Map<string, number>();
  for (const pending of batch) {
    const index = next.get(pending.record.ip) ?? 0;
    (out[index] ??= []).push(pending);
    next.set(pending.record.ip, index + 1);
  }
  return out;
}

/**
 * The conditional upsert; returns the records it wrote (a refused one is simply not returned).
 * The rows travel as one JSON parameter (json_to_recordset): one short statement whatever the batch
 * size, cheaper for the store to parse and plan than a VALUES list of 7 parameters a row, and
 * escaped by JSON.stringify alone (the records were validated: no NUL, no lone surrogate).
 */
async function upsert(db: Kysely<Database> | Transaction<Database>, pendings: Pending[]): Promise<Pending[]> {
  const rows = JSON.stringify(
    pendings.map(({ record: r }) => ({
      ip: r.ip,
      network_id: r.networkId,
      mac: r.mac,
      client_id: r.clientId,
      hostname: r.hostname,
      state: r.state,
      expires_at: r.expiresAt.toISOString(),
    })),
  );
  // Free, or already this client's (and not in decline probation, which even its owner waits out).
  const result = await sql<{ ip: string }>`
    insert into leases (ip, network_id, mac, client_id, hostname, state, expires_at)
    select ip, network_id, mac, client_id, hostname, state, expires_at
      from json_to_recordset(${rows}::json)
        as r(ip inet, network_id integer, mac text, client_id text, hostname text, state text, expires_at timestamptz)
    on conflict (ip) do update set
      network_id = excluded.network_id, mac = excluded.mac, client_id = excluded.client_id,
      hostname = excluded.hostname, state = excluded.state, expires_at = excluded.expires_at, updated_at = now()
    where leases.state in ('released', 'expired') or leases.expires_at <= now()
      or (leases.state <> 'declined' and coalesce(leases.client_id, leases.mac) = coalesce(excluded.client_id, excluded.mac))
    returning ip`.execute(db);
  const done = new Set(result.rows.map((row) => stripMask(String(row.ip))));
  return pendings.filter((p) => done.has(p.record.ip));
}
