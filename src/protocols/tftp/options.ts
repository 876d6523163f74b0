/**
 * Option negotiation (RFC 2347) for a read: blksize (RFC 2348), timeout and tsize (RFC 2349),
 * windowsize (RFC 7440). Options we do not know are left out of the OACK, which is how a server
 * declines them; a known option with a bad value is ignored the same way (RFC 2347 §"Negotiation").
 */
export interface TransferLimits {
  /** Largest block the server will send (client asks, server may lower it). */
  readonly maxBlockSize: number;
  /** Largest window the server will use. */
  readonly maxWindowSize: number;
  /** Retransmission timeout when the client asks for none, in ms. */
  readonly defaultTimeoutMs: number;
  /**
   * Largest `timeout` option accepted (s); a larger one is declined (RFC 2349 lets the server
   * decline, not change it) and the default used, so that a request asking for 255 s cannot hold
   * a transfer slot for timeout × retries ≈ 21 minutes. Default 5.
   */
  readonly maxTimeoutSeconds?: number;
}

export interface NegotiatedTransfer {
  readonly blockSize: number;
  readonly windowSize: number;
  readonly timeoutMs: number;
  /** The options to acknowledge; empty means no OACK (plain RFC 1350 transfer). */
  readonly oack: Map<string, string>;
}

const DECIMAL = /^[0-9]{1,10}$/;

export function negotiate(
  requested: ReadonlyMap<string, string>,
  fileSize: number,
  limits: TransferLimits,
): NegotiatedTransfer {
  const oack = new Map<string, string>();
  let blockSize = 512;
  let windowSize = 1;
  let timeoutMs = limits.defaultTimeoutMs;
  for (const [name, value] of requested) {
    if (!DECIMAL.test(value)) continue;
    const n = Number(value);
    switch (name) {
      case 'blksize':
        if (n >= 8 && n <= 65464) {
          blockSize = Math.min(n, limits.maxBlockSize);
          oack.set('blksize', String(blockSize));
        }
        break;
      case 'timeout':
        if (n >= 1 && n <= Math.min(255, limits.maxTimeoutSeconds ?? 5)) {
          timeoutMs = n * 1000;
          oack.set('timeout', String(n));
        }
        break;
      case 'tsize':
        // On a read the client sends 0 and the server answers the size. An empty file's size is
        // left out (declining the option is allowed): curl rejects an OACK carrying "tsize 0".
        if (fileSize > 0) oack.set('tsize', String(fileSize));
        break;
      case 'windowsize':
        if (n >= 1 && n <= 65535) {
          windowSize = Math.min(n, limits.maxWindowSize);
          oack.set('windowsize', String(windowSize));
        }
        break;
      default:
        break;
    }
  }
  return { blockSize, windowSize, timeoutMs, oack };
}
