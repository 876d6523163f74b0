/**
 * RFC 1350 netascii (LF → CR LF, CR → CR NUL), converted once per file version and kept while
 * that version is served: each transfer of a file used to make its own copy (~4 GB with
 * thousands of transfers of ipxe.efi). Bounded: at most `limitBytes` of converted copies, least
 * recently used first out; a file larger than the whole budget is not served in netascii.
 */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (const byte of data) if (byte === 10 || byte === 13) extra += 1;
  if (extra === 0) return data;
  // In shared memory, as the file store's originals are: transfer workers read it without a copy.
  const out = Buffer.from(new SharedArrayBuffer(data.length + extra));
  let o = 0;
  for (const byte of data) {
    if (byte === 10) {
      out[o++] = 13;
      out[o++] = 10;
    } else if (byte === 13) {
      out[o++] = 13;
      out[o++] = 0;
    } else out[o++] = byte;
  }
  return out;
}

/** An entry keeps its original alive too (an old version the file store has let go). */
const cost = (original: Buffer, converted: Buffer) => original.length + (converted === original ? 0 : converted.length);

export class NetasciiCache {
  /** Keyed by the file's buffer, which the file store replaces when the file changes. */
  readonly #entries = new Map<Buffer, Buffer>();
  #bytes = 0;
  conversions = 0;

  constructor(private readonly limitBytes = 64 * 1024 * 1024) {}

  get bytes(): number {
    return this.#bytes;
  }

  /** The netascii form of this file version, or undefined when it would not fit the budget. */
  convert(data: Buffer): Buffer | undefined {
    const hit = this.#entries.get(data);
    if (hit) {
      this.#entries.delete(data);
      this.#entries.set(data, hit);
      return hit;
    }
    if (data.length > this.limitBytes) return undefined;
    const converted = toNetascii(data);
    this.conversions += 1;
    if (cost(data, converted) > this.limitBytes) return undefined;
    this.#entries.set(data, converted);
    this.#bytes += cost(data, converted);
    for (const [key, value] of this.#entries) {
      if (this.#bytes <= this.limitBytes) break;
      this.#entries.delete(key);
      this.#bytes -= cost(key, value);
    }
    return converted;
  }
}
