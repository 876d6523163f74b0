/**
 * Build-token checks in batches: the Kickstart and boot-file requests that arrive together (one
 * turn of the event loop, or while the previous check is running) share ONE query —
 * `WHERE build_token IN (…)`, joined with everything their answers need (fleet/builds.ts,
 * buildsByTokenHashes). Under a storm the batches grow by themselves; an idle server adds no wait
 * beyond the current turn.
 *
 * Nothing is remembered past its batch: every request is checked against the store as it is now,
 * so a token spent or replaced on any boot server stops working here at once. A string that cannot
 * be a token never reaches the store.
 */
import type { Kysely } from 'kysely';
import { buildsByTokenHashes, hashToken, isTokenShaped, type TokenBuild } from '../fleet/builds.ts';
import type { Database } from '../store/schema.ts';

interface Waiter {
  readonly resolve: (build: TokenBuild | undefined) => void;
  readonly reject: (error: unknown) => void;
}

export class TokenBatcher {
  readonly #db: Kysely<Database>;
  readonly #maxBatch: number;
  #pending = new Map<string, Waiter[]>();
  #scheduled = false;
  #running = false;
  readonly stats = { lookups: 0, queries: 0, refusedShape: 0 };

  readonly #prepared: boolean;

  /**
   * @param options.prepared plan the query once (a prepared statement): only for a store that is
   * one session, the embedded one (serve.ts)
   */
  constructor(db: Kysely<Database>, options: { maxBatch?: number; prepared?: boolean } = {}) {
    this.#db = db;
    this.#prepared = options.prepared ?? false;
    this.#maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
  }

  /**
   * The current build this token belongs to, or undefined (unknown, spent, replaced, malformed).
   * Requests with the same token in one batch get the same object.
   */
  lookup(token: string): Promise<TokenBuild | undefined> {
    if (!isTokenShaped(token)) {
      this.stats.refusedShape += 1;
      return Promise.resolve(undefined);
    }
    this.stats.lookups += 1;
    const hash = hashToken(token);
    return new Promise((resolve, reject) => {
      const waiters = this.#pending.get(hash);
      if (waiters) waiters.push({ resolve, reject });
      else this.#pending.set(hash, [{ resolve, reject }]);
      if (!this.#running && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#run());
      }
    });
  }

  async #run(): Promise<void> {
    this.#scheduled = false;
    this.#running = true;
    try {
      while (this.#pending.size > 0) await this.#query(this.#take());
    } finally {
      this.#running = false;
    }
  }

  /** Up to maxBatch distinct tokens of what is waiting, oldest first. */
  #take(): Map<string, Waiter[]> {
    if (this.#pending.size <= this.#maxBatch) {
      const all = this.#pending;
      this.#pending = new Map();
      return all;
    }
    const batch = new Map<string, Waiter[]>();
    for (const [hash, waiters] of this.#pending) {
      if (batch.size === this.#maxBatch) break;
      batch.set(hash, waiters);
    }
    for (const hash of batch.keys()) this.#pending.delete(hash);
    return batch;
  }

  async #query(batch: Map<string, Waiter[]>): Promise<void> {
    try {
      this.stats.queries += 1;
      const found = await buildsByTokenHashes(this.#db, [...batch.keys()], { prepared: this.#prepared });
      for (const [hash, waiters] of batch) {
        const build = found.get(hash);
        for (const waiter of waiters) waiter.resolve(build);
      }
    } catch (error) {
      // The store did not answer: every request of the batch fails as its own query would have.
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
    }
  }
}
