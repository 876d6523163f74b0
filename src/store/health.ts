/**
 * Store health for readiness checks (/readyz, which load balancers poll): is the store *reachable*?
 * Not "how long is the queue": during an install storm the connection pool is saturated and a
 * `select 1` behind it can take longer than a load balancer's check timeout, so every boot server
 * would fail its check at once and the site would have no server left. So:
 *  - any query of the process that succeeded within FRESH_MS proves the store answers (Kysely's
 *    log hook reports each one), at no cost;
 *  - otherwise one round trip on a connection of its own (PostgreSQL), never queued behind the pool.
 */
import type { LogEvent } from 'kysely';
import pg from 'pg';

/** A success this recent answers readiness without a query. */
export const FRESH_MS = 5_000;
const PROBE_TIMEOUT_MS = 2_000;

export interface StoreHealthSnapshot {
  readonly lastSuccessAt: number | null;
  readonly lastFailureAt: number | null;
  readonly lastError: string | null;
}

/** What /readyz answers, on the boot HTTP role and the API alike. */
export interface Readiness {
  readonly statusCode: 200 | 503;
  readonly body: { readonly status: 'ready' | 'store unreachable' };
}

export class StoreHealth {
  #lastSuccessAt: number | null = null;
  #lastFailureAt: number | null = null;
  #lastError: string | null = null;
  readonly #probe: () => Promise<void>;
  readonly #now: () => number;

  /** `probe`: one round trip that does not wait behind the store's pool. */
  constructor(probe: () => Promise<void>, now: () => number = Date.now) {
    this.#probe = probe;
    this.#now = now;
  }

  /** For Kysely's `log` option: every finished query says whether the store answered. */
  readonly onQuery = (event: LogEvent): void => {
    if (event.level === 'query') this.noteSuccess();
    else this.noteFailure(event.error);
  };

  noteSuccess(): void {
    this.#lastSuccessAt = this.#now();
  }

  noteFailure(error: unknown): void {
    // A query the server refused (a constraint, bad input) still proves it answers.
    if (isServerAnswer(error)) return this.noteSuccess();
    this.#lastFailureAt = this.#now();
    this.#lastError = error instanceof Error ? error.message : String(error);
  }

  snapshot(): StoreHealthSnapshot {
    return { lastSuccessAt: this.#lastSuccessAt, lastFailureAt: this.#lastFailureAt, lastError: this.#lastError };
  }

  /** Reachable: a fresh success that no later failure contradicts, or a probe that answers within its timeout. */
  async ready(): Promise<boolean> {
    const now = this.#now();
    const success = this.#lastSuccessAt;
    if (
      success !== null &&
      now - success < FRESH_MS &&
      (this.#lastFailureAt === null || this.#lastFailureAt <= success)
    )
      return true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#probe(),
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error('store probe timed out')), PROBE_TIMEOUT_MS)),
        ),
      ]);
      this.noteSuccess();
      return true;
    } catch (error) {
      this.noteFailure(error);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** /readyz of every role that serves from the store: 200 while it is reachable (see ready), else 503. */
export async function readiness(health: StoreHealth): Promise<Readiness> {
  return (await health.ready())
    ? { statusCode: 200, body: { status: 'ready' } }
    : { statusCode: 503, body: { status: 'store unreachable' } };
}

/** PostgreSQL errors with an SQLSTATE came from the server: it is reachable. Class 08 (connection) and 57P (shutdown) do not count. */
function isServerAnswer(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    /^[0-9A-Z]{5}$/.test(code) &&
    !code.startsWith('08') &&
    !code.startsWith('57P') &&
    !code.startsWith('53')
  );
}

/**
 * The readiness probe for a PostgreSQL store: one connection of its own, opened when first needed
 * and again after it breaks, so a check never waits for a connection of the saturated pool.
 */
export function postgresProbe(connectionString: string): { probe: () => Promise<void>; close: () => Promise<void> } {
  let client: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  const drop = (c: pg.Client) => {
    if (client === c) client = null;
    c.end().catch(() => undefined);
  };
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({
      connectionString,
      connectionTimeoutMillis: PROBE_TIMEOUT_MS,
      query_timeout: PROBE_TIMEOUT_MS,
      application_name: 'kvmfleet-readyz',
    });
    c.on('error', () => drop(c)); // the server went away: the next probe reconnects
    await c.connect().catch((error: unknown) => {
      drop(c);
      throw error;
    });
    return c;
  };
  return {
    async probe() {
      if (!client) {
        connecting ??= connect().finally(() => (connecting = null));
        client = await connecting;
      }
      const c = client;
      try {
        await c.query('select 1');
      } catch (error) {
        drop(c);
        throw error;
      }
    },
    async close() {
      const c = client ?? (await connecting?.catch(() => null)) ?? null;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}
