/**
 * Group commit of leases: every write asked for within a short window goes into one transaction,
 * and each caller's promise resolves only after that transaction committed. The DHCP server sends
 * an ACK only then, so a crash never loses an ACKed lease; batching keeps the commit rate sane.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, LeaseState } from './schema.ts';

export interface LeaseRecord {
  readonly ip: string;
  readonly networkId: number;
  readonly mac: string;
  readonly clientId: string | null;
  readonly hostname: string | null;
  readonly state: LeaseState;
  readonly expiresAt: Date;
}

interface Pending {
  record: LeaseRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class LeaseWriter {
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #running = false;
  readonly stats = { writes: 0, commits: 0 };

  constructor(
    private readonly db: Kysely<Database>,
    private readonly windowMs = 2,
    private readonly maxBatch = 500,
  ) {}

  write(record: LeaseRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, resolve, reject });
      // While a commit runs, writes pile up and go together in the next one: the busier the
      // server, the bigger the batches. An idle server waits only windowMs for company.
      if (!this.#running && !this.#timer) this.#timer = setTimeout(() => this.#run(), this.windowMs);
    });
  }

  #run(): void {
    this.#timer = undefined;
    this.#running = true;
    this.#flushing = (async () => {
      while (this.#queue.length > 0) await this.#flush();
      this.#running = false;
    })();
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    // The last write of an address in the batch wins.
    const latest = new Map<string, LeaseRecord>();
    for (const { record } of batch) latest.set(record.ip, record);
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('leases')
          .values([...latest.values()].map((r) => ({ ip: r.ip, network_id: r.networkId, mac: r.mac, client_id: r.clientId, hostname: r.hostname, state: r.state, expires_at: r.expiresAt.toISOString() })))
          .onConflict((oc) =>
            oc.column('ip').doUpdateSet({
              network_id: (eb) => eb.ref('excluded.network_id'),
              mac: (eb) => eb.ref('excluded.mac'),
              client_id: (eb) => eb.ref('excluded.client_id'),
              hostname: (eb) => eb.ref('excluded.hostname'),
              state: (eb) => eb.ref('excluded.state'),
              expires_at: (eb) => eb.ref('excluded.expires_at'),
              updated_at: sql`now()`,
            }),
          )
          .execute();
      });
      this.stats.writes += batch.length;
      this.stats.commits += 1;
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }

  /** Waits for everything queued so far to be committed (shutdown). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#timer || this.#running) {
      await new Promise((r) => setTimeout(r, this.windowMs + 1));
    }
    await this.#flushing;
  }
}
