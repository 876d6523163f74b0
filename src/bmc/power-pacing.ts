/**
 * How many machines a site power-on may switch on now: one pure function of the site's admission
 * state (sites.build_cap, hosts building and queued: fleet/builds.ts) and the job's own limits, so an
 * install storm is shaped at the power switch, not only at the boot server.
 *
 * A machine powered on and not yet building is waiting for a build slot (booting towards its iPXE
 * script, or asking and queued). The job never lets more machines wait than the site's free slots
 * plus a small margin (so the next machine boots while a slot frees), counting hosts queued by
 * anyone else and the power-on calls still under way; when those fill the room it holds off. The
 * rate (tokens per minute) and the BMC calls in parallel bound it on top.
 */

export interface PacingInput {
  /** The site's build cap. */
  readonly cap: number;
  /** Hosts building at the site now. */
  readonly building: number;
  /** Hosts this job powered on that are not building yet (booting or queued). */
  readonly poweredWaiting: number;
  /** Hosts queued at the site that this job did not power on. */
  readonly queuedOthers: number;
  /** Power-on calls under way (each is about to be a waiting host). */
  readonly calls: number;
  readonly margin: number;
  /** Whole rate tokens available now. */
  readonly tokens: number;
  readonly maxParallel: number;
  /** Hosts not powered on yet. */
  readonly remaining: number;
}

export type HoldReason = 'done' | 'queue-full' | 'no-slot' | 'rate' | 'parallel';

export type PacingDecision =
  { readonly launch: number; readonly reason: 'go' } | { readonly launch: 0; readonly reason: HoldReason };

/** The margin over the free slots when the operator names none: a tenth of the cap, at least one (none on a site whose cap is 0). */
export function defaultMargin(cap: number): number {
  return cap <= 0 ? 0 : Math.max(1, Math.floor(cap / 10));
}

export function decidePowerOn(input: PacingInput): PacingDecision {
  if (input.remaining <= 0) return { launch: 0, reason: 'done' };
  const free = Math.max(0, input.cap - input.building);
  const waiting = input.poweredWaiting + input.queuedOthers + input.calls;
  const room = free + input.margin - waiting;
  // Admission first: what the site cannot take is not powered on however many tokens there are.
  if (room <= 0) return { launch: 0, reason: input.queuedOthers > 0 ? 'queue-full' : 'no-slot' };
  const parallel = input.maxParallel - input.calls;
  if (parallel <= 0) return { launch: 0, reason: 'parallel' };
  const tokens = Math.floor(input.tokens);
  if (tokens <= 0) return { launch: 0, reason: 'rate' };
  return { launch: Math.min(room, parallel, tokens, input.remaining), reason: 'go' };
}

/**
 * A token bucket: `perMinute` tokens a minute, at most `burst` saved up (1: evenly spaced calls).
 * Time is passed in (milliseconds), so it is deterministic under test.
 */
export class TokenBucket {
  readonly #intervalMs: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  constructor(perMinute: number, now: number, burst = 1) {
    if (!(perMinute > 0) || !(burst >= 1)) throw new RangeError('a rate must be positive and a burst at least 1');
    this.#intervalMs = 60_000 / perMinute;
    this.#burst = burst;
    this.#tokens = burst; // the first call goes at once
    this.#at = now;
  }

  #refill(now: number): void {
    if (now <= this.#at) return;
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) / this.#intervalMs);
    this.#at = now;
  }

  available(now: number): number {
    this.#refill(now);
    return Math.floor(this.#tokens + 1e-9);
  }

  /** Takes one token; false (and nothing taken) when there is none. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens + 1e-9 < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until the next whole token (0: one is there). */
  msUntilNext(now: number): number {
    this.#refill(now);
    return this.#tokens + 1e-9 >= 1 ? 0 : Math.ceil((1 - this.#tokens) * this.#intervalMs - 1e-6);
  }
}
