/**
 * The dynamic addresses of one network, in memory: who holds what, until when. Pure bookkeeping —
 * durability is the caller's (a lease is written to the store before its ACK is sent).
 * An address is free when nobody holds it: no unexpired binding, offer, or decline.
 * `mac` in a hold is the client's lease key: its client identifier when it sends one, else its MAC.
 *
 * Bounded, for any number of clients (random MACs cost nothing to send): holds are one per address
 * at most, and expired ones are forgotten on a sweep; the clients remembered (the address each was
 * last given, so that it gets it back) are at most `maxClients`, the least recently seen forgotten
 * first together with its offer — never a client whose binding is held (so `heldBy` always finds a
 * binding: a forgotten bound client would be given a second address).
 */
export type HoldKind = 'offered' | 'bound' | 'declined';

export interface Hold {
  readonly ip: number;
  readonly mac: string;
  readonly kind: HoldKind;
  /** ms since epoch */
  readonly until: number;
}

export interface PoolStats {
  size: number;
  bound: number;
  offered: number;
  declined: number;
  free: number;
  /** What the pool keeps in memory: holds (expired ones included until swept) plus clients remembered. */
  entries: number;
}

export interface PoolLimits {
  /** Clients remembered at most; default the larger of 1 024 and twice the range, never below the range + 1. */
  readonly maxClients?: number | undefined;
}

/** Expired holds are swept at most this often (in the callers' clock). */
const SWEEP_MS = 10_000;

export class LeasePool {
  readonly #start: number;
  readonly #end: number;
  readonly #holds = new Map<number, Hold>();
  /**
   * The address each client was last associated with, free or not: clients get their old address
   * back. In least-recently-seen order (Map insertion order, re-inserted on each hold).
   */
  readonly #lastIpOf = new Map<string, number>();
  readonly #isExcluded: (ip: number) => boolean;
  readonly #maxClients: number;
  #cursor: number;
  #nextSweep = 0;

  constructor(
    range: { start: number; end: number },
    isExcluded: (ip: number) => boolean = () => false,
    limits: PoolLimits = {},
  ) {
    this.#start = range.start;
    this.#end = range.end;
    this.#cursor = range.start;
    this.#isExcluded = isExcluded;
    const size = range.end - range.start + 1;
    // Above the range size, so that among more clients than the cap one at least holds no binding.
    this.#maxClients = Math.max(limits.maxClients ?? Math.max(1024, 2 * size), size + 1);
  }

  get maxClients(): number {
    return this.#maxClients;
  }

  contains(ip: number): boolean {
    return ip >= this.#start && ip <= this.#end;
  }

  holder(ip: number, now: number): Hold | undefined {
    const hold = this.#holds.get(ip);
    if (!hold) return undefined;
    if (hold.until <= now) {
      this.#holds.delete(ip);
      return undefined;
    }
    return hold;
  }

  /** Whether this client may have this address now. */
  availableTo(ip: number, mac: string, now: number): boolean {
    if (!this.contains(ip) || this.#isExcluded(ip)) return false;
    const hold = this.holder(ip, now);
    return !hold || (hold.mac === mac && hold.kind !== 'declined');
  }

  /** The address this client holds (bound or offered), if any. */
  heldBy(mac: string, now: number): number | undefined {
    const ip = this.#lastIpOf.get(mac);
    if (ip === undefined) return undefined;
    const hold = this.holder(ip, now);
    return hold && hold.mac === mac && hold.kind !== 'declined' ? ip : undefined;
  }

  /**
   * A part of the range: a failover pair splits every pool, the primary taking the lower half and
   * the secondary the upper, so that the two never offer one free address to two clients.
   */
  part(which: 'lower' | 'upper' | 'all'): { start: number; end: number } {
    if (which === 'all') return { start: this.#start, end: this.#end };
    const mid = this.#start + Math.floor((this.#end - this.#start + 1) / 2) - 1;
    return which === 'lower' ? { start: this.#start, end: mid } : { start: mid + 1, end: this.#end };
  }

  /**
   * An address for this client: the one it holds, its previous one if free, else the next free one
   * — new addresses only from `within` (default: the whole range).
   */
  choose(
    mac: string,
    now: number,
    requested?: number,
    within: { start: number; end: number } = { start: this.#start, end: this.#end },
  ): number | undefined {
    this.#sweep(now);
    const held = this.heldBy(mac, now);
    if (held !== undefined) return held;
    const inside = (ip: number) => ip >= within.start && ip <= within.end;
    if (requested !== undefined && inside(requested) && this.availableTo(requested, mac, now)) return requested;
    const previous = this.#lastIpOf.get(mac);
    if (previous !== undefined && inside(previous) && this.availableTo(previous, mac, now)) return previous;
    if (this.#cursor < within.start || this.#cursor > within.end) this.#cursor = within.start;
    const size = within.end - within.start + 1;
    for (let i = 0; i < size; i++) {
      const ip = this.#cursor;
      this.#cursor = this.#cursor >= within.end ? within.start : this.#cursor + 1;
      if (this.availableTo(ip, mac, now) && !this.#holds.has(ip)) return ip;
    }
    return undefined;
  }

  /**
   * Records who holds an address until when. An offer never replaces a longer binding of the same
   * client (a DISCOVER from a bound client must not shrink its lease to an offer's lifetime), and a
   * decline's probation is never dropped because its client moved on to another address.
   */
  hold(ip: number, mac: string, kind: HoldKind, until: number): void {
    const current = this.#holds.get(ip);
    if (kind === 'offered' && current?.mac === mac && current.kind === 'bound' && current.until >= until) {
      this.#remember(mac, ip);
      return;
    }
    const previous = this.#lastIpOf.get(mac);
    const before = previous === undefined || previous === ip ? undefined : this.#holds.get(previous);
    // The client's earlier offer lapses when it is offered or bound elsewhere; its earlier binding only when it binds elsewhere.
    if (
      before?.mac === mac &&
      kind !== 'declined' &&
      (before.kind === 'offered' || (before.kind === 'bound' && kind === 'bound'))
    )
      this.#holds.delete(previous!);
    this.#holds.set(ip, { ip, mac, kind, until });
    if (kind !== 'declined') this.#remember(mac, ip);
  }

  #remember(mac: string, ip: number): void {
    this.#lastIpOf.delete(mac);
    this.#lastIpOf.set(mac, ip);
    // Forget the least recently seen clients past the cap; a client holding a binding goes to the
    // back instead (bindings are at most one per address, so this ends, and amortizes to O(1)).
    let kept = 0;
    while (this.#lastIpOf.size > this.#maxClients && kept < this.#lastIpOf.size) {
      const [oldest, itsIp] = this.#lastIpOf.entries().next().value!;
      this.#lastIpOf.delete(oldest);
      const hold = this.#holds.get(itsIp);
      if (hold?.mac === oldest && hold.kind === 'bound') {
        this.#lastIpOf.set(oldest, itsIp);
        kept += 1;
      } else if (hold?.mac === oldest && hold.kind === 'offered') this.#holds.delete(itsIp);
    }
  }

  /** Expired holds are forgotten (also one by one when looked at: see holder). */
  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + SWEEP_MS;
    for (const [ip, hold] of this.#holds) if (hold.until <= now) this.#holds.delete(ip);
  }

  free(ip: number, mac: string): void {
    if (this.#holds.get(ip)?.mac === mac) this.#holds.delete(ip);
  }

  stats(now: number): PoolStats {
    const stats: PoolStats = {
      size: this.#end - this.#start + 1,
      bound: 0,
      offered: 0,
      declined: 0,
      free: 0,
      entries: 0,
    };
    for (const ip of [...this.#holds.keys()]) {
      const hold = this.holder(ip, now);
      if (hold) stats[hold.kind] += 1;
    }
    stats.free = stats.size - stats.bound - stats.offered - stats.declined;
    stats.entries = this.#holds.size + this.#lastIpOf.size;
    return stats;
  }
}
