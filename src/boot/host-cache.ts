/**
 * What a boot server remembers of the fleet for when its store is briefly unreachable: every MAC's
 * host and build state, refreshed in the background. With it, a built host is still sent to its
 * disk and everyone else is told to wait and retry — instead of an error loop — until the store is
 * back. Nothing that needs the store (admission, tokens, Kickstarts) is answered from it.
 *
 * It is the second BootBackend (backend.ts): the same questions, answered from the last snapshot of
 * the store's, so the roles fall back to it without knowing more than the interface.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { StoreBootBackend, type BootBackend, type BootHost } from './backend.ts';

/** A host as the cache has it (as of its last refresh). */
export type CachedHost = BootHost;

export interface CacheStats {
  /** Scripts answered from the cache because the store did not answer. */
  answeredFromCache: number;
  storeErrors: number;
  lastStoreError: string | null;
  lastStoreErrorAt: string | null;
  refreshedAt: string | null;
  hosts: number;
}

export class HostCache implements BootBackend {
  readonly #store: BootBackend;
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

  /** `store`: what it takes its snapshots of (the database itself, or any backend over it). */
  constructor(
    store: Kysely<Database> | BootBackend,
    readonly refreshMs = 15_000,
  ) {
    this.#store = isBackend(store) ? store : new StoreBootBackend(store);
  }

  async start(): Promise<void> {
    await this.refresh().catch(() => undefined);
    this.#timer = setInterval(() => void this.refresh().catch(() => undefined), this.refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** A new snapshot of every host, in one read of the store; the old one stays if that fails. */
  async refresh(): Promise<void> {
    const hosts = await this.#store.allHosts();
    this.#hosts = new Map(hosts.map((host) => [host.mac, host]));
    this.stats.refreshedAt = new Date().toISOString();
    this.stats.hosts = this.#hosts.size;
  }

  /** The cached host of a MAC, synchronously (the cache never waits for anything). */
  get(mac: string): CachedHost | undefined {
    return this.#hosts.get(mac);
  }

  /** Every cached host, one entry per MAC. */
  hosts(): IterableIterator<CachedHost> {
    return this.#hosts.values();
  }

  async hostByMac(mac: string): Promise<BootHost | undefined> {
    return this.get(mac);
  }

  /**
   * The snapshot is keyed by MAC only: a machine booting by UUID finds nothing here, and is answered
   * as when the store is away (it retries), as before there was a cache.
   */
  async hostByUuid(_uuid: string): Promise<BootHost | undefined> {
    return undefined;
  }

  async hostsByMac(macs: readonly string[]): Promise<BootHost[]> {
    return macs.flatMap((mac) => this.#hosts.get(mac) ?? []);
  }

  async allHosts(): Promise<BootHost[]> {
    return [...this.#hosts.values()];
  }

  noteStoreError(error: unknown): void {
    this.stats.storeErrors += 1;
    this.stats.lastStoreError = (error as Error).message ?? String(error);
    this.stats.lastStoreErrorAt = new Date().toISOString();
  }
}

function isBackend(value: Kysely<Database> | BootBackend): value is BootBackend {
  return typeof (value as Partial<BootBackend>).allHosts === 'function';
}
