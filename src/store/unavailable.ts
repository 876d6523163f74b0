/**
 * Is an error "the store is not answering" (try again later) rather than a fault of the request or
 * of kvmfleet? PostgreSQL gone, restarting, out of connections or of disk; a connection refused,
 * reset or timed out. Callers answer those with 503 and Retry-After, not 500.
 */

/** Socket errors of the connection to the store. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATE classes and codes (PostgreSQL, appendix A): 08 connection exception, 53 insufficient
 * resources (disk full, out of memory, too many connections), 57P01–57P03 shutdown / cannot
 * connect now, 58030 I/O error.
 */
const SQLSTATE_CLASSES = ['08', '53'];
const SQLSTATE_CODES = new Set(['57P01', '57P02', '57P03', '58030']);

/** node-postgres' own errors, which carry no code. */
const PG_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection terminated due to connection timeout)/;

export function isStoreUnavailable(error: unknown): boolean {
  for (
    let e: unknown = error, depth = 0;
    e instanceof Error && depth < 4;
    e = (e as Error & { cause?: unknown }).cause, depth++
  ) {
    const { code, syscall } = e as Error & { code?: unknown; syscall?: unknown };
    if (typeof code === 'string') {
      if (NETWORK_CODES.has(code) || SQLSTATE_CODES.has(code)) return true;
      // PostgreSQL's unix socket is gone while the server is stopped: connect says ENOENT.
      if (code === 'ENOENT' && syscall === 'connect') return true;
      if (/^[0-9A-Z]{5}$/.test(code) && SQLSTATE_CLASSES.includes(code.slice(0, 2))) return true;
    }
    if (PG_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/** Seconds a client is told to wait before trying again (the store's own timeouts are ~10 s). */
export const STORE_RETRY_AFTER_S = 5;
