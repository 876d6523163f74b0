/**
 * `site power-on` and `site power-off` as jobs (vms/jobs.ts: leased, resumable, cancellable; one
 * result per host — ok, or the error's code — so a dead BMC is reported and the rest go on).
 *
 * power-on is paced by admission control (power-pacing.ts): each round it reads the site's cap,
 * builds and queue (fleet/builds.ts, handed in) and which of the hosts it powered on are still waiting, and
 * powers on only what the site can take — then the rate and the BMC calls in parallel on top. A
 * powered-on host stops counting as waiting once it builds, or when it has not asked to build
 * within `bootGraceS` (it did not network-boot: it must not stall the site for ever). Resumed by
 * another worker, the hosts already powered on count as waiting again for their grace.
 *
 * power-off sends a soft (ACPI) shutdown, waits up to `softTimeoutS` for the machine to go off,
 * then powers it off hard. Hosts already off are left alone.
 */
import { sql, type Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { BuildState, Database } from '../store/schema.ts';
import { decidePowerOn, defaultMargin, TokenBucket } from './power-pacing.ts';
import { recordPowerState } from './power-poller.ts';
import { PowerService, type BmcDeps, type PowerAction } from './power.ts';
import { Semaphore } from '../semaphore.ts';

// The job runner (vms/jobs.ts) and admission control (boot/builds.ts) sit above this layer: what is
// used of them is stated here and handed in (cluster/power-work.ts wires them).

/** One host's result, as vms/job-model.ts's JobItemResult. */
export interface PowerItemResult {
  readonly name: string;
  /** The host's BMC address. */
  readonly hypervisor: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly code?: string;
  readonly detail?: string;
  readonly ms: number;
}

/** What the job runner gives a job kind (vms/jobs.ts's JobContext). */
export interface PowerJobContext {
  readonly params: Record<string, unknown>;
  readonly prior: readonly PowerItemResult[];
  holds(): boolean;
  cancelled(): boolean;
  record(item: PowerItemResult): void;
  /** Records an item a cancel kept from starting. */
  recordCancelled(name: string, hypervisor: string): void;
}

/** The job runner, as far as site power uses it. */
export interface PowerJobQueue<J> {
  registerKind(kind: string, run: (ctx: PowerJobContext) => Promise<void>): void;
  enqueue(kind: string, total: number, params: Record<string, unknown>, actor: string): Promise<J>;
}

/** The site's admission state (fleet/builds.ts siteBuilds): its cap, how many build, who is queued (fresh). */
export type SiteAdmission = (site: string) => Promise<{ cap: number; building: number; queued: readonly string[] }>;

export const SITE_POWER_KINDS = { on: 'site-power-on', off: 'site-power-off' } as const;
export type SitePowerAction = keyof typeof SITE_POWER_KINDS;

export interface SitePowerRequest {
  readonly site: string;
  readonly action: SitePowerAction;
  /** Only hosts in these build states (power-on default: ready; power-off default: every state). */
  readonly states?: readonly BuildState[];
  /** Power-on/off starts a minute (default 60). */
  readonly ratePerMinute?: number;
  /** BMC calls at once (default 8). */
  readonly maxParallel?: number;
  /** Hosts waiting beyond the free build slots (default max(1, cap / 10)). */
  readonly margin?: number;
  /** power-off: seconds a soft shutdown is given before the hard power-off (default 120). */
  readonly softTimeoutS?: number;
  /** power-on: seconds a powered-on host may take to ask to build before it stops counting as waiting (default 600). */
  readonly bootGraceS?: number;
}

/** What the job row carries: the hosts chosen when it was asked for, and its limits. */
export interface SitePowerParams {
  readonly site: string;
  readonly action: SitePowerAction;
  readonly hosts: readonly string[];
  readonly ratePerMinute: number;
  readonly maxParallel: number;
  readonly margin: number | null;
  readonly softTimeoutS: number;
  readonly bootGraceS: number;
}

export const SITE_POWER_LIMITS = {
  ratePerMinute: { min: 1, max: 60_000, default: 60 },
  maxParallel: { min: 1, max: 256, default: 8 },
  margin: { min: 0, max: 10_000 },
  softTimeoutS: { min: 1, max: 3600, default: 120 },
  bootGraceS: { min: 10, max: 86_400, default: 600 },
} as const;

const within = (name: string, value: number | undefined, range: { min: number; max: number }) => {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < range.min || value > range.max)
    throw new KvmfleetError(ErrorCode.Validation, `${name} must be a whole number ${range.min}–${range.max}`);
};

/** Chooses the site's hosts with a BMC (in the states asked) and queues the job; 409 when there is none. */
export async function startSitePower<J>(
  db: Kysely<Database>,
  jobs: PowerJobQueue<J>,
  request: SitePowerRequest,
  actor: string,
): Promise<J> {
  const L = SITE_POWER_LIMITS;
  within('rate', request.ratePerMinute, L.ratePerMinute);
  within('maxParallel', request.maxParallel, L.maxParallel);
  within('margin', request.margin, L.margin);
  within('softTimeout', request.softTimeoutS, L.softTimeoutS);
  within('bootGrace', request.bootGraceS, L.bootGraceS);
  const site = await db.selectFrom('sites').select('id').where('name', '=', request.site).executeTakeFirst();
  if (!site) throw new KvmfleetError(ErrorCode.NotFound, `site "${request.site}" does not exist`);
  const states = request.states ?? (request.action === 'on' ? ['ready'] : undefined);
  let query = db
    .selectFrom('hosts')
    .innerJoin('networks', 'networks.id', 'hosts.network_id')
    .select('hosts.hostname')
    .where('networks.site_id', '=', site.id)
    .where(sql<boolean>`jsonb_typeof(hosts.bmc) = 'object'`);
  if (states?.length) query = query.where('hosts.build_state', 'in', states);
  const hosts = (await query.orderBy('hosts.hostname').execute()).map((r) => r.hostname);
  if (!hosts.length)
    throw new KvmfleetError(
      ErrorCode.NoBmc,
      `site ${request.site} has no host with a BMC${states?.length ? ` in state ${states.join(' or ')}` : ''}`,
    );
  const params: SitePowerParams = {
    site: request.site,
    action: request.action,
    hosts,
    ratePerMinute: request.ratePerMinute ?? L.ratePerMinute.default,
    maxParallel: request.maxParallel ?? L.maxParallel.default,
    margin: request.margin ?? null,
    softTimeoutS: request.softTimeoutS ?? L.softTimeoutS.default,
    bootGraceS: request.bootGraceS ?? L.bootGraceS.default,
  };
  return jobs.enqueue(SITE_POWER_KINDS[request.action], hosts.length, { ...params }, actor);
}

export interface SitePowerDeps {
  readonly db: Kysely<Database>;
  readonly bmc: BmcDeps;
  readonly admission: SiteAdmission;
  /** How often the job looks at the site again while it holds off (default 500 ms). */
  readonly tickMs?: number;
  /** How often power-off asks whether a soft shutdown is done (default 5 s). */
  readonly offPollMs?: number;
}

/** Makes this worker run site power jobs. */
export function registerSitePowerJobs(jobs: PowerJobQueue<unknown>, deps: SitePowerDeps): void {
  jobs.registerKind(SITE_POWER_KINDS.on, (ctx) => new SitePowerRun(ctx, deps).powerOn());
  jobs.registerKind(SITE_POWER_KINDS.off, (ctx) => new SitePowerRun(ctx, deps).powerOff());
}

const codeOf = (error: unknown) => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('KVMF_ERR_') ? code : ErrorCode.Internal;
};
/**
 * Tokens saved up at most: half a second's worth (at most the calls in parallel, at least one). A
 * round of the job takes a few milliseconds of store queries; with no saving a fast rate would lose
 * that time at every call (measured: 2 150 a minute asked 3 000), with it a window of a second or
 * more never sees more than the rate.
 */
const burstOf = (p: SitePowerParams) => Math.min(p.maxParallel, Math.max(1, Math.floor(p.ratePerMinute / 120)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class SitePowerRun {
  readonly #ctx: PowerJobContext;
  readonly #p: SitePowerParams;
  readonly #db: Kysely<Database>;
  readonly #power: PowerService;
  readonly #admission: SiteAdmission;
  readonly #tickMs: number;
  readonly #offPollMs: number;
  #wake: (() => void) | undefined;

  constructor(ctx: PowerJobContext, deps: SitePowerDeps) {
    this.#ctx = ctx;
    this.#p = ctx.params as unknown as SitePowerParams;
    this.#db = deps.db;
    this.#power = new PowerService(deps.db, deps.bmc);
    this.#admission = deps.admission;
    this.#tickMs = deps.tickMs ?? 500;
    this.#offPollMs = deps.offPollMs ?? 5000;
  }

  /** The hosts without a result yet, in the job's order. */
  #todo(): string[] {
    const done = new Set(this.#ctx.prior.map((r) => r.name));
    return this.#p.hosts.filter((h) => !done.has(h));
  }

  async #hostRows(names: readonly string[]) {
    const rows = names.length
      ? await this.#db
          .selectFrom('hosts')
          .select(['id', 'hostname', 'bmc', 'build_state'])
          .where('hostname', 'in', [...names])
          .execute()
      : [];
    return new Map(rows.map((r) => [r.hostname, r]));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** One BMC call for a host; its reading is recorded as the poller's would be. */
  async #call(host: { id: number; hostname: string }, action: PowerAction) {
    const result = await this.#power.power(host.hostname, action);
    await recordPowerState(this.#db, host.id, result.powerState).catch(() => undefined);
    return result;
  }

  #fail(hostname: string, address: string, error: unknown, started: number): PowerItemResult {
    return {
      name: hostname,
      hypervisor: address,
      ok: false,
      error: (error as Error).message,
      code: codeOf(error),
      ms: Date.now() - started,
    };
  }

  /** Items not started when a cancel came: recorded as cancelled, so the job can end. */
  #cancelRest(todo: string[], addresses: Map<string, string>): void {
    for (const name of todo.splice(0)) this.#ctx.recordCancelled(name, addresses.get(name) ?? '');
  }

  async powerOn(): Promise<void> {
    const ctx = this.#ctx;
    const todo = this.#todo();
    const rows = await this.#hostRows(this.#p.hosts);
    const addresses = new Map([...rows].map(([name, r]) => [name, r.bmc?.address ?? '']));
    const graceMs = this.#p.bootGraceS * 1000;
    /** Hosts this job powered on that may still be on their way to a build slot → when. */
    const powered = new Map<string, number>();
    const resumedAt = Date.now();
    for (const r of ctx.prior) if (r.ok) powered.set(r.name, resumedAt);
    const bucket = new TokenBucket(this.#p.ratePerMinute, Date.now(), burstOf(this.#p));
    const calls = new Set<Promise<void>>();

    const launch = (hostname: string) => {
      const started = Date.now();
      const row = rows.get(hostname);
      const address = addresses.get(hostname) ?? '';
      const call = (async () => {
        try {
          if (!row) throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist any more`);
          const result = await this.#call(row, 'on');
          powered.set(hostname, Date.now());
          ctx.record({
            name: hostname,
            hypervisor: address,
            ok: true,
            detail: result.powerState,
            ms: Date.now() - started,
          });
        } catch (error) {
          ctx.record(this.#fail(hostname, address, error, started));
        }
      })().finally(() => {
        calls.delete(call);
        this.#wake?.();
      });
      calls.add(call);
    };

    while (todo.length) {
      if (!ctx.holds()) break; // another worker goes on from the results recorded
      if (ctx.cancelled()) {
        this.#cancelRest(todo, addresses);
        break;
      }
      let wait = this.#tickMs;
      try {
        const site = await this.#admission(this.#p.site);
        const queued = new Set(site.queued);
        const states = await this.#hostRows([...powered.keys()]);
        const now = Date.now();
        for (const [name, at] of powered) {
          const state = states.get(name)?.build_state;
          // Building (or past it): the host has its slot. Not asking within its grace: it did not boot.
          if (state !== 'ready' || (!queued.has(name) && now - at > graceMs)) powered.delete(name);
        }
        const decision = decidePowerOn({
          cap: site.cap,
          building: site.building,
          poweredWaiting: powered.size,
          queuedOthers: [...queued].filter((h) => !powered.has(h)).length,
          calls: calls.size,
          margin: this.#p.margin ?? defaultMargin(site.cap),
          tokens: bucket.available(now),
          maxParallel: this.#p.maxParallel,
          remaining: todo.length,
        });
        for (let i = 0; i < decision.launch; i++) {
          bucket.take(now);
          launch(todo.shift()!);
        }
        if (decision.reason === 'rate') wait = Math.min(wait, Math.max(1, bucket.msUntilNext(Date.now())));
        if (decision.reason === 'go' && todo.length) wait = Math.max(1, bucket.msUntilNext(Date.now()));
      } catch {
        /* the store is briefly away: look again at the next round */
      }
      if (todo.length) await this.#sleep(wait);
    }
    await Promise.all(calls);
  }

  async powerOff(): Promise<void> {
    const ctx = this.#ctx;
    const todo = this.#todo();
    const rows = await this.#hostRows(this.#p.hosts);
    const addresses = new Map([...rows].map(([name, r]) => [name, r.bmc?.address ?? '']));
    const slots = new Semaphore(this.#p.maxParallel);
    const bucket = new TokenBucket(this.#p.ratePerMinute, Date.now(), burstOf(this.#p));
    const softMs = this.#p.softTimeoutS * 1000;
    const hosts: Promise<void>[] = [];

    const off = async (hostname: string) => {
      const started = Date.now();
      const address = addresses.get(hostname) ?? '';
      const row = rows.get(hostname);
      const ok = (detail: string) =>
        ctx.record({ name: hostname, hypervisor: address, ok: true, detail, ms: Date.now() - started });
      try {
        if (!row) throw new KvmfleetError(ErrorCode.NotFound, `host "${hostname}" does not exist any more`);
        if ((await slots.run(() => this.#call(row, 'status'))).powerState === 'off') return ok('was off');
        await slots.run(() => this.#call(row, 'soft'));
        const deadline = Date.now() + softMs;
        while (Date.now() < deadline) {
          await sleep(Math.min(this.#offPollMs, Math.max(1, deadline - Date.now())));
          if ((await slots.run(() => this.#call(row, 'status'))).powerState === 'off') return ok('soft');
        }
        const hard = await slots.run(() => this.#call(row, 'off'));
        ok(`hard after ${this.#p.softTimeoutS} s (${hard.powerState})`);
      } catch (error) {
        ctx.record(this.#fail(hostname, address, error, started));
      }
    };

    while (todo.length) {
      if (!ctx.holds()) break;
      if (ctx.cancelled()) {
        this.#cancelRest(todo, addresses);
        break;
      }
      const now = Date.now();
      if (bucket.take(now)) hosts.push(off(todo.shift()!));
      else await sleep(Math.max(1, bucket.msUntilNext(now)));
    }
    await Promise.all(hosts);
  }
}
