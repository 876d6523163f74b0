/**
 * The boot roles' per-event log, shaped for storms: each request, transfer or packet at debug, and
 * every interval (default 60 s) one info line of counts by kind and status:
 *
 *   boot http: 1 234 requests (script 500, kickstart 500, kernel 234; 2 × 404) in 60 s
 *
 * A 2 000-machine boot storm is then a line a minute at info, and the rest of the log (errors,
 * failover, the API) stays readable; `--log-level debug` shows every event again. Nothing is
 * logged for an interval without events. Kinds and statuses are named by the caller from small
 * tables; if a caller passes something open-ended (a file name), at most `maxKeys` distinct
 * values are counted by name and the rest as "other", so memory stays bounded.
 */

/** The part of a pino logger this needs (a Fastify app's `log` fits). */
export interface SummaryLog {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  isLevelEnabled?(level: string): boolean;
}

export interface BootEvent {
  /** What was asked for: script, kickstart, kernel; a file; a DHCP message type. */
  readonly kind: string;
  /** How it went: an HTTP status, a transfer outcome, the DHCP reply type. */
  readonly status: number | string;
  /** The debug line's message (default "<label> <kind> <status>"). */
  readonly msg?: string;
  /** More fields of the debug line (already redacted by the caller: URLs via boot/log-redact.ts). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface SummaryTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface BootSummaryOptions {
  /** The role as the line names it: "boot http", "tftp", "dhcp". */
  readonly label: string;
  /** What one event is, singular: "request", "transfer", "packet". */
  readonly noun: string;
  readonly log: SummaryLog;
  /** Default 60 000. */
  readonly intervalMs?: number;
  /** Statuses not worth a mention in the line (default: HTTP below 400, and "ok"/"completed"). */
  readonly isOk?: (status: number | string) => boolean;
  /** Distinct kinds (and statuses) counted by name; default 32. */
  readonly maxKeys?: number;
  /** For tests: the clock and the timer (defaults Date.now and the global timers, unref'd). */
  readonly now?: () => number;
  readonly timers?: SummaryTimers;
}

export const DEFAULT_SUMMARY_INTERVAL_MS = 60_000;
const OTHER = 'other';

const defaultIsOk = (status: number | string) =>
  typeof status === 'number' ? status < 400 : status === 'ok' || status === 'completed';

const realTimers: SummaryTimers = {
  setInterval(callback, ms) {
    const handle = setInterval(callback, ms);
    handle.unref(); // a summary never keeps the process alive
    return handle;
  },
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/** 1234567 → "1 234 567" (the grouping of the line; the fields carry plain numbers). */
export function groupDigits(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

/** Counts in a Map with a bound on distinct keys; beyond it, "other". */
class Tally {
  readonly counts = new Map<string, number>();
  constructor(private readonly maxKeys: number) {}

  add(key: string): void {
    const name = this.counts.has(key) || this.counts.size < this.maxKeys ? key : OTHER;
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  /** Largest first; equal counts in the order first seen. */
  sorted(): [string, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1]);
  }
}

export class BootSummary {
  readonly #options: BootSummaryOptions;
  readonly #now: () => number;
  readonly #timers: SummaryTimers;
  readonly #handle: unknown;
  #since: number;
  #total = 0;
  #kinds: Tally;
  #statuses: Tally;

  constructor(options: BootSummaryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? realTimers;
    this.#since = this.#now();
    this.#kinds = new Tally(options.maxKeys ?? 32);
    this.#statuses = new Tally(options.maxKeys ?? 32);
    this.#handle = this.#timers.setInterval(() => this.flush(), options.intervalMs ?? DEFAULT_SUMMARY_INTERVAL_MS);
  }

  /** One event: counted, and logged at debug when debug is on. */
  record(event: BootEvent): void {
    this.#total += 1;
    this.#kinds.add(event.kind);
    this.#statuses.add(String(event.status));
    const log = this.#options.log;
    if (log.isLevelEnabled && !log.isLevelEnabled('debug')) return; // a storm builds no objects nobody reads
    log.debug(
      { kind: event.kind, status: event.status, ...event.fields },
      event.msg ?? `${this.#options.label} ${event.kind} ${event.status}`,
    );
  }

  /** The info line for what was counted since the last one (none if nothing was), then a fresh count. */
  flush(): void {
    const now = this.#now();
    const seconds = Math.round((now - this.#since) / 1000);
    const total = this.#total;
    const kinds = this.#kinds.sorted();
    const statuses = this.#statuses.sorted();
    this.#since = now;
    this.#total = 0;
    this.#kinds = new Tally(this.#options.maxKeys ?? 32);
    this.#statuses = new Tally(this.#options.maxKeys ?? 32);
    if (total === 0) return;

    const isOk = this.#options.isOk ?? defaultIsOk;
    const noted = statuses.filter(([status]) => !isOk(/^\d+$/.test(status) ? Number(status) : status));
    const byKind = kinds.map(([kind, n]) => `${kind} ${groupDigits(n)}`).join(', ');
    const byStatus = noted.map(([status, n]) => `${groupDigits(n)} × ${status}`).join(', ');
    const { label, noun } = this.#options;
    this.#options.log.info(
      {
        summary: label,
        total,
        seconds,
        byKind: Object.fromEntries(kinds),
        byStatus: Object.fromEntries(statuses),
      },
      `${label}: ${groupDigits(total)} ${total === 1 ? noun : `${noun}s`} (${byKind}${byStatus ? `; ${byStatus}` : ''}) in ${seconds} s`,
    );
  }

  /** Stop the timer and log what is still counted. */
  stop(): void {
    this.#timers.clearInterval(this.#handle);
    this.flush();
  }
}
