/**
 * Password guessing is slowed down: after `maxFailures` failed logins for one user name, or
 * `maxFailures × 4` from one client address, within `windowMs`, further attempts on that key are
 * refused (even with the right password) until the oldest failure leaves the window. A success
 * clears its user's count. In memory: each api node counts its own; argon2's cost bounds the rate
 * of a spread-out attack anyway.
 */
export interface ThrottleVerdict {
  readonly allowed: boolean;
  /** When refused: seconds until the next attempt is accepted. */
  readonly retryAfterS: number;
}

/** An attempt let through by reserve(): counted as a failure until settled as a success. */
export interface ThrottleReservation extends ThrottleVerdict {
  settle(succeeded: boolean): void;
}

export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();

  constructor(
    readonly maxFailures = 5,
    readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  check(user: string, ip: string): ThrottleVerdict {
    const waits = [this.#wait(`user:${user}`, this.maxFailures), this.#wait(`ip:${ip}`, this.maxFailures * 4)];
    const wait = Math.max(...waits);
    return { allowed: wait === 0, retryAfterS: Math.ceil(wait / 1000) };
  }

  /**
   * Checks and, if allowed, counts the attempt at once — before the slow password check — so N
   * parallel guesses cannot all pass a check that only counts them afterwards.
   */
  reserve(user: string, ip: string): ThrottleReservation {
    const verdict = this.check(user, ip);
    if (!verdict.allowed) return { ...verdict, settle: () => undefined };
    const at = this.now();
    this.#add(`user:${user}`, at);
    this.#add(`ip:${ip}`, at);
    return {
      ...verdict,
      settle: (succeeded) => {
        if (!succeeded) return;
        this.succeeded(user);
        const recent = this.#failures.get(`ip:${ip}`) ?? [];
        const i = recent.lastIndexOf(at);
        if (i >= 0) recent.splice(i, 1); // a success is not a failure of its address either
      },
    };
  }

  #add(key: string, at: number): void {
    this.#failures.set(key, [...this.#recent(key), at]);
    if (this.#failures.size > 10_000) this.#prune();
  }

  failed(user: string, ip: string): void {
    for (const key of [`user:${user}`, `ip:${ip}`]) this.#failures.set(key, [...this.#recent(key), this.now()]);
    if (this.#failures.size > 10_000) this.#prune();
  }

  succeeded(user: string): void {
    this.#failures.delete(`user:${user}`);
  }

  #recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.#failures.get(key) ?? []).filter((t) => t > since);
  }

  /** Milliseconds until `key` may try again (0: now). */
  #wait(key: string, max: number): number {
    const recent = this.#recent(key);
    if (recent.length < max) return 0;
    return recent[recent.length - max]! + this.windowMs - this.now();
  }

  #prune(): void {
    for (const key of [...this.#failures.keys()]) {
      const recent = this.#recent(key);
      if (recent.length) this.#failures.set(key, recent);
      else this.#failures.delete(key);
    }
  }
}
