/**
 * Authenticated failover heartbeats. Each datagram is a JSON body and, on a second line, its
 * HMAC-SHA256 under the pair's shared key (read from a file both servers are given). A beat is
 * accepted only if the MAC verifies, its timestamp is within `maxSkewMs` of our clock (a recorded
 * beat cannot be replayed later) and its (timestamp, sequence) is later than the last beat accepted
 * (nor replayed within the window). A restarted sender starts a new sequence at a later time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface Beat {
  readonly role: 'primary' | 'secondary';
  readonly state: 'recover' | 'normal' | 'communications-interrupted' | 'partner-down';
  /** Sender's clock, ms since epoch. */
  readonly ts: number;
  readonly seq: number;
}

const STATES = new Set(['recover', 'normal', 'communications-interrupted', 'partner-down']);
export const MIN_KEY_BYTES = 16;

/** The shared key: the file's contents, surrounding whitespace removed; at least 16 bytes. */
export function loadFailoverKey(path: string): Buffer {
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'utf8');
  if (key.length < MIN_KEY_BYTES)
    throw new Error(
      `the failover key in ${path} is ${key.length} bytes; it needs at least ${MIN_KEY_BYTES} (e.g. openssl rand -hex 32)`,
    );
  return key;
}

const mac = (key: Buffer, body: Buffer) => createHmac('sha256', key).update(body).digest();

export class BeatSealer {
  #seq = 0;
  constructor(private readonly key: Buffer) {}

  seal(beat: Omit<Beat, 'seq' | 'ts'>, now = Date.now()): Buffer {
    const body = Buffer.from(
      JSON.stringify({ kvmfleet: 2, role: beat.role, state: beat.state, ts: now, seq: ++this.#seq }),
    );
    return Buffer.concat([body, Buffer.from(`\n${mac(this.key, body).toString('hex')}`)]);
  }
}

export class BeatVerifier {
  #last: { ts: number; seq: number } = { ts: -Infinity, seq: 0 };
  readonly refused = { malformed: 0, badMac: 0, stale: 0, replayed: 0 };

  constructor(
    private readonly key: Buffer,
    private readonly maxSkewMs = 30_000,
  ) {}

  /** The beat, if it is authentic and new; undefined (and counted) otherwise. */
  open(datagram: Buffer, now = Date.now()): Beat | undefined {
    const newline = datagram.lastIndexOf(0x0a);
    const tag = newline > 0 ? Buffer.from(datagram.subarray(newline + 1).toString('latin1'), 'hex') : Buffer.alloc(0);
    if (tag.length !== 32) return this.#refuse('malformed');
    const body = datagram.subarray(0, newline);
    if (!timingSafeEqual(tag, mac(this.key, body))) return this.#refuse('badMac');
    let beat: Partial<Beat> & { kvmfleet?: unknown };
    try {
      beat = JSON.parse(body.toString('utf8')) as typeof beat;
    } catch {
      return this.#refuse('malformed');
    }
    if (
      beat.kvmfleet !== 2 ||
      (beat.role !== 'primary' && beat.role !== 'secondary') ||
      !STATES.has(beat.state as string) ||
      !Number.isSafeInteger(beat.ts) ||
      !Number.isSafeInteger(beat.seq)
    )
      return this.#refuse('malformed');
    if (Math.abs(now - beat.ts!) > this.maxSkewMs) return this.#refuse('stale');
    // Later than the last accepted, by time then sequence (two beats in one millisecond). A sender
    // whose clock stepped back is refused until it passes its last accepted beat again.
    const later = beat.ts! > this.#last.ts || (beat.ts === this.#last.ts && beat.seq! > this.#last.seq);
    if (!later) return this.#refuse('replayed');
    this.#last = { ts: beat.ts!, seq: beat.seq! };
    return beat as Beat;
  }

  #refuse(why: keyof BeatVerifier['refused']): undefined {
    this.refused[why] += 1;
    return undefined;
  }
}
