/**
 * What a boot server remembers of the fleet for when its store is briefly unreachable: every MAC's
 * host and build state, refreshed in the background. With it, a built host is still sent to its
 * disk and everyone else is told to wait and retry — instead of an error loop — until the store is
 * back. Nothing that needs the store (admission, tokens, Kickstarts) is answered from it.
 */
import type { Kysely } from 'kysely';
import type { BuildState, Database } from '../store/schema.ts';

export interface CachedHost {
  readonly hostname: string;
  readonly buildState: BuildState;
}

export interface CacheStats {
  /** Scripts answered from the cache because the store did not answer. */
  answeredFromCache: number;
  storeErrors: number;
  lastStoreError: string | null;
  lastStoreErrorAt: string | null;
  refreshedAt: string | null;
  hosts: number;
}

/** Errors that mean "the store is not reachable now", as opposed to a bad query or a conflict. */
export function isStoreUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      '57P01',
      '57P03',
      '08000',
      '08001',
      '08003',
      '08006',
    ].includes(e?.code ?? '') ||
    /Connection terminated|timeout exceeded|Query read timeout|connect ETIMEDOUT|server closed the connection/i.test(
      e?.message ?? '',
    )
  );
}

export class HostCache {
  readonly #db: Kysely<Database>;
  #hosts = new Map<string, CachedHost>();
  #timer: NodeJS.Timeout | undefined;
  readonly stats: CacheStats = {
    answeredFromCache: 0,
    storeErrors: 0,
    lastStoreError: null,
    lastStoreErrorAt: null,
    refreshedAt: null,
    hosts: 0,
  };

  constructor(
    db: Kysely<Database>,
    readonly refreshMs = 15_000,
  ) {
    this.#db = db;
  }

  async start(): Promise<void> {
    await this.refresh().catch(() => undefined);
    this.#timer = setInterval(() => void this.refresh().catch(() => undefined), this.refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async refresh(): Promise<void> {
    const rows = await this.#db
      .selectFrom('host_macs')
      .innerJoin('hosts', 'hosts.id', 'host_macs.host_id')
      .select(['host_macs.mac', 'hosts.hostname', 'hosts.build_state'])
      .execute();
    this.#hosts = new Map(rows.map((r) => [r.mac, { hostname: r.hostname, buildState: r.build_state }]));
    this.stats.refreshedAt = new Date().toISOString();
    this.stats.hosts = this.#hosts.size;
  }

  get(mac: string): CachedHost | undefined {
    return this.#hosts.get(mac);
  }

  noteStoreError(error: unknown): void {
    this.stats.storeErrors += 1;
    this.stats.lastStoreError = (error as Error).message ?? String(error);
    this.stats.lastStoreErrorAt = new Date().toISOString();
  }
}
