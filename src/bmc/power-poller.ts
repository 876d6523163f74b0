/**
 * Power state polled from the BMCs at a bounded rate, on one node of a cluster at a time.
 *
 * - Bounded: at most `perSecond` BMC queries a second from this process (evenly spaced), and each
 *   host at most once per `intervalMs` (the host whose reading is oldest goes first); at most
 *   `maxInFlight` sessions open at once (a dead BMC holds one for its ~7 s of retransmissions).
 * - One node: the poller holds the `power-poller` lease in node_leases (database time, renewed every
 *   tick); a node whose lease was taken over stops querying until it wins it back.
 * - Recorded: hosts.power_state ('on' | 'off' | 'unknown' with power_error: the code when the BMC did
 *   not answer) and power_checked_at; a change is a `power` host event, which the live event stream
 *   (api/events.ts) and the timeline carry.
 * Site power jobs (site-power.ts) record what their calls read the same way.
 */
import { randomUUID } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import type { Sample } from '../metrics.ts';
import type { Database, PowerState } from '../store/schema.ts';
import type { Db } from '../store/tx.ts';
import { TokenBucket } from './power-pacing.ts';
import { PowerService, type BmcDeps } from './power.ts';

export const POWER_LEASE = 'power-poller';

export interface PowerPollerOptions {
  /** Each host at most once per this (default 60 s). */
  readonly intervalMs?: number;
  /** BMC queries a second from this process, at most (default 10). */
  readonly perSecond?: number;
  /** Sessions open at once, at most (default 64). */
  readonly maxInFlight?: number;
  /** How often it looks for hosts due and renews its lease (default 1 s). */
  readonly tickMs?: number;
  /** The lease's length (default 30 s); another node takes over when it runs out. */
  readonly leaseMs?: number;
  readonly onError?: (error: unknown) => void;
}

/** A host's BMC answers with a reading: stored with its time; a change is a `power` event. Returns whether it changed. */
export async function recordPowerState(
  db: Kysely<Database>,
  hostId: number,
  state: PowerState,
  error: string | null = null,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const before = await trx
      .selectFrom('hosts')
      .select(['power_state', 'power_error'])
      .where('id', '=', hostId)
      .forUpdate()
      .executeTakeFirst();
    if (!before) return false; // removed meanwhile
    await trx
      .updateTable('hosts')
      .set({ power_state: state, power_error: error, power_checked_at: sql<Date>`now()` })
      .where('id', '=', hostId)
      .execute();
    if (before.power_state === state) return false;
    await insertPowerEvent(trx, hostId, { state, was: before.power_state, ...(error ? { code: error } : {}) });
    return true;
  });
}

// Written here rather than through fleet/builds.ts's recordEvent, whose kinds are the build lifecycle's.
async function insertPowerEvent(db: Db, hostId: number, detail: Record<string, unknown>): Promise<void> {
  await db
    .insertInto('host_events')
    .values({ host_id: hostId, kind: 'power', detail: JSON.stringify(detail) })
    .execute();
}

/** Takes or renews a lease on one node's work; true while this owner holds it. */
export async function holdLease(db: Kysely<Database>, name: string, owner: string, leaseMs: number): Promise<boolean> {
  const { rows } = await sql<{ owner: string }>`
    insert into node_leases (name, owner, lease_until)
    values (${name}, ${owner}, now() + ${`${leaseMs} milliseconds`}::interval)
    on conflict (name) do update set owner = excluded.owner, lease_until = excluded.lease_until
      where node_leases.owner = excluded.owner or node_leases.lease_until < now()
    returning owner`.execute(db);
  return rows[0]?.owner === owner;
}

const codeOf = (error: unknown) => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('KVMF_ERR_') ? code : 'KVMF_ERR_INTERNAL';
};

export class PowerPoller {
  readonly #db: Kysely<Database>;
  readonly #power: PowerService;
  readonly #intervalMs: number;
  readonly #maxInFlight: number;
  readonly #tickMs: number;
  readonly #leaseMs: number;
  readonly #perSecond: number;
  readonly #bucket: TokenBucket;
  readonly #onError: (error: unknown) => void;
  readonly #inFlight = new Map<number, Promise<void>>();
  /** Who holds the lease: unique per process. */
  readonly owner = `${osHostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> = Promise.resolve();
  #stopped = false;
  #held = false;
  /** Queries sent by this process (for tests and the bench). */
  queries = 0;

  constructor(db: Kysely<Database>, bmc: BmcDeps, options: PowerPollerOptions = {}) {
    this.#db = db;
    this.#power = new PowerService(db, bmc);
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#maxInFlight = options.maxInFlight ?? 64;
    this.#tickMs = options.tickMs ?? 1000;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#perSecond = options.perSecond ?? 10;
    if (!(this.#perSecond > 0) || !(this.#intervalMs > 0))
      throw new RangeError('poll rate and interval must be positive');
    this.#bucket = new TokenBucket(this.#perSecond * 60, Date.now());
    this.#onError = options.onError ?? (() => {});
  }

  /** Whether this process held the lease at its last tick. */
  get holding(): boolean {
    return this.#held;
  }

  start(): void {
    const next = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        this.#loop = this.tick().then(next, next);
      }, this.#tickMs);
      this.#timer.unref();
    };
    this.#loop = this.tick().then(next, next);
  }

  /** No more queries; waits for those under way and gives the lease up. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#loop;
    await Promise.all(this.#inFlight.values());
    if (this.#held)
      await this.#db
        .deleteFrom('node_leases')
        .where('name', '=', POWER_LEASE)
        .where('owner', '=', this.owner)
        .execute()
        .catch(() => undefined);
    this.#held = false;
  }

  /** One round: renew the lease, then query the hosts due, paced by the rate. */
  async tick(): Promise<void> {
    try {
      this.#held = await holdLease(this.#db, POWER_LEASE, this.owner, this.#leaseMs);
      if (!this.#held) return;
      const room = this.#maxInFlight - this.#inFlight.size;
      // What the rate allows until the next tick, so a slow round never piles up.
      const budget = Math.min(room, Math.max(1, Math.floor((this.#tickMs / 1000) * this.#perSecond)));
      if (budget <= 0) return;
      const busy = [...this.#inFlight.keys()];
      let query = this.#db
        .selectFrom('hosts')
        .select(['id', 'hostname'])
        .where(sql<boolean>`jsonb_typeof(bmc) = 'object'`)
        .where((eb) =>
          eb.or([
            eb('power_checked_at', 'is', null),
            eb('power_checked_at', '<', sql<Date>`now() - ${`${this.#intervalMs} milliseconds`}::interval`),
          ]),
        );
      if (busy.length) query = query.where('id', 'not in', busy);
      const due = await query
        .orderBy(sql`power_checked_at asc nulls first`)
        .orderBy('id')
        .limit(budget)
        .execute();
      for (const host of due) {
        if (this.#stopped) return;
        for (let wait = this.#bucket.msUntilNext(Date.now()); wait > 0; wait = this.#bucket.msUntilNext(Date.now()))
          await new Promise((r) => setTimeout(r, wait));
        this.#bucket.take(Date.now());
        this.queries += 1;
        const run = this.#query(host.id, host.hostname).finally(() => this.#inFlight.delete(host.id));
        this.#inFlight.set(host.id, run);
      }
    } catch (error) {
      this.#onError(error); // the store is away: the next tick tries again
    }
  }

  async #query(hostId: number, hostname: string): Promise<void> {
    let state: PowerState;
    let error: string | null = null;
    try {
      state = (await this.#power.power(hostname, 'status')).powerState;
    } catch (e) {
      state = 'unknown';
      error = codeOf(e);
    }
    try {
      await recordPowerState(this.#db, hostId, state, error);
    } catch (e) {
      this.#onError(e);
    }
  }
}

/**
 * kvmfleet_host_power{state}: hosts with a BMC by their last reading (never read: unknown), counted
 * from the store so every API node serves the same figures. `refresh` runs on a periodic; the
 * metrics render reads what it counted last.
 */
export class PowerGauge {
  #counts: Record<PowerState, number> = { on: 0, off: 0, unknown: 0 };
  constructor(private readonly db: Kysely<Database>) {}

  async refresh(): Promise<void> {
    const rows = await this.db
      .selectFrom('hosts')
      .select(['power_state', (eb) => eb.fn.countAll<string>().as('count')])
      .where(sql<boolean>`jsonb_typeof(bmc) = 'object'`)
      .groupBy('power_state')
      .execute();
    const counts: Record<PowerState, number> = { on: 0, off: 0, unknown: 0 };
    for (const row of rows) counts[row.power_state ?? 'unknown'] += Number(row.count);
    this.#counts = counts;
  }

  samples(): Sample[] {
    return [
      {
        name: 'kvmfleet_host_power',
        help: 'hosts with a BMC by their last power reading (unknown: not read yet or the BMC did not answer)',
        type: 'gauge',
        values: Object.entries(this.#counts).map(([state, value]) => ({ labels: { state }, value })),
      },
    ];
  }
}
