/**
 * Token buckets: `burst` at once, refilled at `perSecond`, one bucket per key (a MAC, or one
 * shared key for a total). The map of buckets is bounded: past `maxKeys` the least recently
 * used bucket is forgotten (it was full again long ago, or its key is one of a flood).
 */
export interface BucketSpec {
  readonly burst: number;
  readonly perSecond: number;
  readonly maxKeys?: number;
}

export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly spec: BucketSpec) {}

  /** Takes one token for this key if there is one. */
  take(key: string, now = Date.now()): boolean {
    const bucket = this.#buckets.get(key) ?? { tokens: this.spec.burst, at: now };
    this.#buckets.delete(key);
    bucket.tokens = Math.min(this.spec.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.spec.perSecond);
    bucket.at = now;
    const ok = bucket.tokens >= 1;
    if (ok) bucket.tokens -= 1;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > (this.spec.maxKeys ?? 10_000)) this.#buckets.delete(this.#buckets.keys().next().value!);
    return ok;
  }
}

/**
 * How much discovery the boot network may cause: new *discovered* hosts in total, and timeline
 * events per MAC and in total. Dropped ones are counted, never queued.
 */
export interface DiscoveryLimits {
  readonly newHosts: BucketSpec;
  readonly eventsPerMac: BucketSpec;
  readonly eventsTotal: BucketSpec;
}

export const DEFAULT_DISCOVERY_LIMITS: DiscoveryLimits = {
  newHosts: { burst: 50, perSecond: 1 },
  eventsPerMac: { burst: 3, perSecond: 0.1 },
  eventsTotal: { burst: 200, perSecond: 50 },
};

export class DiscoveryLimiter {
  readonly #newHosts: TokenBuckets;
  readonly #perMac: TokenBuckets;
  readonly #total: TokenBuckets;
  readonly dropped = { hosts: 0, events: 0 };

  constructor(limits: DiscoveryLimits = DEFAULT_DISCOVERY_LIMITS) {
    this.#newHosts = new TokenBuckets(limits.newHosts);
    this.#perMac = new TokenBuckets(limits.eventsPerMac);
    this.#total = new TokenBuckets(limits.eventsTotal);
  }

  /** May an unknown MAC be recorded as a new discovered host now? */
  newHost(now = Date.now()): boolean {
    if (this.#newHosts.take('*', now)) return true;
    this.dropped.hosts += 1;
    return false;
  }

  /** May this MAC's timeline get another event now? */
  event(mac: string, now = Date.now()): boolean {
    if (this.#perMac.take(mac, now) && this.#total.take('*', now)) return true;
    this.dropped.events += 1;
    return false;
  }
}
