/**
 * A DHCP failover pair for one site's boot networks: primary and secondary share the store (the
 * clustered topology's PostgreSQL) and split the work by RFC 3074 load balancing.
 *
 * - Clients: a client's hash bucket below `split` is the primary's, the rest the secondary's. A
 *   server also answers a client of its partner whose `secs` has reached `lbMaxSeconds` (the
 *   partner seems not to answer it) — RFC 3074 §5.
 * - Addresses: each server offers new dynamic addresses only from its half of every pool, so the
 *   two never offer one address to two clients; a lease is durable in the shared store before its
 *   ACK leaves, so neither loses one the other gave.
 * - States: recover (just started: serves nobody until it has heard its partner, or until it is
 *   sure the partner is gone) → normal ⇄ communications-interrupted (no heartbeat for
 *   `maxSilenceMs`: serves its own clients, its own half, leases no longer than MCLT) →
 *   partner-down (after `partnerDownDelayMs` more: reloads every lease from the store and serves
 *   everyone from the whole pool). Hearing the partner again returns to normal; a server leaving
 *   recover reloads the leases first, so addresses given out while it was away are known.
 */
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { bucketOwner, loadBalanceHash, loadBalanceKey, type FailoverRole } from '../protocols/dhcp4/load-balance.ts';
import type { DhcpPacket } from '../protocols/dhcp4/packet.ts';
import { BeatSealer, BeatVerifier } from './failover-auth.ts';

export type FailoverState = 'recover' | 'normal' | 'communications-interrupted' | 'partner-down';

export interface FailoverConfig {
  readonly role: FailoverRole;
  /** Buckets below this are the primary's (RFC 3074; ISC's "split"). */
  readonly split: number;
  /** Answer a partner's client once its secs field reaches this (ISC's "load balance max seconds"). */
  readonly lbMaxSeconds: number;
  /** Maximum client lead time: the longest lease given while the partner cannot be told (seconds). */
  readonly mcltSeconds: number;
  readonly heartbeatMs: number;
  readonly maxSilenceMs: number;
  /** How long communications-interrupted lasts before this server takes over everything. */
  readonly partnerDownDelayMs: number;
}

export const FAILOVER_DEFAULTS = {
  split: 128,
  lbMaxSeconds: 3,
  mcltSeconds: 3600,
  heartbeatMs: 1000,
  maxSilenceMs: 3000,
  partnerDownDelayMs: 10_000,
} as const;

/** The state machine, pure: fed with the clock and what is heard from the partner. */
export class FailoverMachine extends EventEmitter<{ state: [FailoverState, FailoverState]; 'reload-leases': [] }> {
  #state: FailoverState = 'recover';
  #since: number;
  #lastHeard = -Infinity;
  #partnerState: FailoverState | undefined;
  readonly counters = { ownClients: 0, partnerClientsBySecs: 0, partnerClientsDropped: 0, transitions: 0 };

  constructor(
    readonly config: FailoverConfig,
    now: number,
  ) {
    super();
    this.#since = now;
  }

  get state(): FailoverState {
    return this.#state;
  }
  get partnerState(): FailoverState | undefined {
    return this.#partnerState;
  }

  #go(next: FailoverState, now: number): void {
    if (next === this.#state) return;
    const previous = this.#state;
    // Entering partner-down, leaving recover, and leaving partner-down (the partner bound addresses
    // while we could not hear it — a partition leaves each with leases the other must learn).
    if (next === 'partner-down' || (next === 'normal' && (previous === 'recover' || previous === 'partner-down')))
      this.emit('reload-leases');
    this.#state = next;
    this.#since = now;
    this.counters.transitions += 1;
    this.emit('state', previous, next);
  }

  /** A heartbeat from the partner, carrying its state. */
  heard(partnerState: FailoverState, now: number): void {
    this.#lastHeard = now;
    this.#partnerState = partnerState;
    if (this.#state === 'recover') {
      // Leave recover only once the partner has stopped serving our half (it is not partner-down).
      if (partnerState !== 'partner-down') this.#go('normal', now);
    } else if (this.#state !== 'normal') {
      this.#go('normal', now);
    }
  }

  /** Advances the clock: silence → communications-interrupted → partner-down. */
  tick(now: number): void {
    const silent = now - this.#lastHeard > this.config.maxSilenceMs;
    if (!silent) return;
    if (this.#state === 'normal' || (this.#state === 'recover' && now - this.#since > this.config.maxSilenceMs))
      this.#go('communications-interrupted', now);
    else if (this.#state === 'communications-interrupted' && now - this.#since >= this.config.partnerDownDelayMs)
      this.#go('partner-down', now);
  }

  /** Whether this server answers this (broadcast) request now. */
  serves(packet: DhcpPacket): boolean {
    if (this.#state === 'partner-down') return true;
    if (this.#state === 'recover') return false;
    const mine = bucketOwner(loadBalanceHash(loadBalanceKey(packet)), this.config.split) === this.config.role;
    if (mine) {
      this.counters.ownClients += 1;
      return true;
    }
    if (packet.secs >= this.config.lbMaxSeconds) {
      this.counters.partnerClientsBySecs += 1;
      return true;
    }
    this.counters.partnerClientsDropped += 1;
    return false;
  }

  /** Which part of each dynamic pool new addresses come from. */
  poolPart(): 'lower' | 'upper' | 'all' {
    if (this.#state === 'partner-down') return 'all';
    return this.config.role === 'primary' ? 'lower' : 'upper';
  }

  /** Leases are capped at MCLT while the partner cannot hear about them. */
  maxLeaseSeconds(): number | undefined {
    return this.#state === 'normal' ? undefined : this.config.mcltSeconds;
  }
}

/**
 * Heartbeats between the two servers over UDP, one datagram a beat, authenticated with the pair's
 * shared key (failover-auth.ts): a forged or replayed beat is dropped and counted, so a third host
 * can neither keep a survivor from taking over nor keep a restarting partner in recover.
 */
export class FailoverLink {
  readonly #socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  #timer: NodeJS.Timeout | undefined;
  readonly #sealer: BeatSealer;
  readonly #verifier: BeatVerifier;

  constructor(
    readonly machine: FailoverMachine,
    readonly local: { address: string; port: number },
    readonly peer: { address: string; port: number },
    key: Buffer,
  ) {
    this.#sealer = new BeatSealer(key);
    this.#verifier = new BeatVerifier(key);
  }

  /** Beats refused: malformed, wrong MAC, outside the clock window, replayed. */
  get refused(): BeatVerifier['refused'] {
    return this.#verifier.refused;
  }

  async start(): Promise<void> {
    this.#socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== this.peer.address) return; // only the configured partner
      const beat = this.#verifier.open(msg);
      if (!beat || beat.role === this.machine.config.role) return;
      this.machine.heard(beat.state, Date.now());
    });
    this.#socket.on('error', () => {}); // a send to a dead partner: silence says enough
    await new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.bind(this.local.port, this.local.address, () => resolve());
    });
    const beat = () => {
      this.machine.tick(Date.now());
      this.#socket.send(
        this.#sealer.seal({ role: this.machine.config.role, state: this.machine.state }),
        this.peer.port,
        this.peer.address,
      );
    };
    beat();
    this.#timer = setInterval(beat, this.machine.config.heartbeatMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#socket.close();
  }
}
