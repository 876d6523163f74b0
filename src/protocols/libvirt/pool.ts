/**
 * One libvirt connection per hypervisor URI, shared by every caller, reopened when it is lost.
 * - Connecting is single-flight: concurrent callers wait for the same attempt.
 * - A lost connection (daemon restart, network cut, keepalive timeout) is dropped at once; the next
 *   call reconnects. After a failed attempt the URI backs off (doubling, capped) and callers get
 *   the last error quickly instead of piling up connection attempts on a dead host.
 * - `use(…, { retry: true })` repeats a call once on a fresh connection when the connection (not
 *   libvirt) failed: only for calls that are safe to repeat (reads, lookups).
 * - Lifecycle subscriptions made through the pool are registered again on every new connection.
 */
import { ConnectionClosedError, KeepaliveTimeoutError } from './connection.ts';
import { LibvirtClient, type ConnectOptions, type LifecycleEvent } from './remote.ts';

export interface PoolOptions extends ConnectOptions {
  /** First wait after a failed connection attempt; doubles up to maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** How to connect (tests and other transports may replace it). */
  readonly connect?: (uri: string, options: ConnectOptions) => Promise<LibvirtClient>;
}

export interface HypervisorLinkStatus {
  readonly uri: string;
  readonly connected: boolean;
  readonly connects: number;
  readonly lastError?: string;
  readonly retryAt?: string;
}

type Listener = (event: LifecycleEvent) => void;

interface Entry {
  client?: LibvirtClient;
  connecting?: Promise<LibvirtClient>;
  connects: number;
  failures: number;
  lastError?: Error;
  retryAt: number;
  listeners: Set<Listener>;
  /** The client that carries this entry's one daemon-side lifecycle registration. */
  dispatching?: LibvirtClient;
}

export function isConnectionLoss(error: unknown): boolean {
  return (
    error instanceof ConnectionClosedError ||
    error instanceof KeepaliveTimeoutError ||
    (error instanceof Error && /ECONNRESET|EPIPE|ECONNREFUSED|connection to libvirt closed/.test(error.message))
  );
}

export class LibvirtPool {
  readonly #entries = new Map<string, Entry>();
  readonly #options: PoolOptions;
  #closed = false;

  constructor(options: PoolOptions = {}) {
    this.#options = options;
  }

  #entry(uri: string): Entry {
    let entry = this.#entries.get(uri);
    if (!entry) this.#entries.set(uri, (entry = { connects: 0, failures: 0, retryAt: 0, listeners: new Set() }));
    return entry;
  }

  /** A live client for the URI, connecting (or reconnecting) if need be. */
  async client(uri: string): Promise<LibvirtClient> {
    if (this.#closed) throw new Error('libvirt pool is closed');
    const entry = this.#entry(uri);
    if (entry.client && !entry.client.connection.closed) return entry.client;
    entry.client = undefined;
    if (entry.connecting) return entry.connecting;
    if (Date.now() < entry.retryAt && entry.lastError) {
      throw new Error(
        `${uri}: not connected (${entry.lastError.message}); next attempt after ${new Date(entry.retryAt).toISOString()}`,
      );
    }
    entry.connecting = this.#connect(uri, entry).finally(() => (entry.connecting = undefined));
    return entry.connecting;
  }

  async #connect(uri: string, entry: Entry): Promise<LibvirtClient> {
    const connect = this.#options.connect ?? ((u, o) => LibvirtClient.connect(u, o));
    try {
      const client = await connect(uri, this.#options);
      entry.failures = 0;
      entry.lastError = undefined;
      entry.connects += 1;
      entry.client = client;
      client.connection.once('close', () => {
        if (entry.client === client) entry.client = undefined;
      });
      if (entry.listeners.size > 0) await this.#dispatch(entry, client);
      return client;
    } catch (error) {
      entry.failures += 1;
      entry.lastError = error as Error;
      const base = this.#options.backoffMs ?? 1000;
      entry.retryAt = Date.now() + Math.min(this.#options.maxBackoffMs ?? 60_000, base * 2 ** (entry.failures - 1));
      throw error;
    }
  }

  /** One daemon-side registration per connection, fanned out to the entry's listeners. */
  async #dispatch(entry: Entry, client: LibvirtClient): Promise<void> {
    if (entry.dispatching === client) return;
    entry.dispatching = client;
    await client.onLifecycle((event) => {
      for (const listener of entry.listeners) listener(event);
    });
  }

  /** Runs `fn` with the URI's client; with retry, once more on a new connection if the connection was lost. */
  async use<T>(uri: string, fn: (client: LibvirtClient) => Promise<T>, options: { retry?: boolean } = {}): Promise<T> {
    try {
      return await fn(await this.client(uri));
    } catch (error) {
      if (!options.retry || !isConnectionLoss(error)) throw error;
      const entry = this.#entry(uri);
      entry.retryAt = 0; // a lost connection is retried at once, not after a backoff
      return fn(await this.client(uri));
    }
  }

  /**
   * Lifecycle events of every domain on the URI, kept across reconnects (events that happen while
   * disconnected are not replayed: callers re-read state after `connects` grows).
   */
  async onLifecycle(uri: string, listener: Listener): Promise<() => void> {
    const entry = this.#entry(uri);
    entry.listeners.add(listener);
    const client = entry.client && !entry.client.connection.closed ? entry.client : undefined;
    if (client) await this.#dispatch(entry, client);
    else await this.client(uri).catch(() => undefined); // registered when the connection comes up
    return () => void entry.listeners.delete(listener);
  }

  status(): HypervisorLinkStatus[] {
    return [...this.#entries].map(([uri, e]) => ({
      uri,
      connected: !!e.client && !e.client.connection.closed,
      connects: e.connects,
      ...(e.lastError ? { lastError: e.lastError.message, retryAt: new Date(e.retryAt).toISOString() } : {}),
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const clients = [...this.#entries.values()].map((e) => e.client).filter((c): c is LibvirtClient => !!c);
    this.#entries.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}
