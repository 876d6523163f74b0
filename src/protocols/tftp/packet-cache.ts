/**
 * DATA packets are built once per (file version, block size) and shared by every transfer of that
 * file: in a boot storm hundreds of clients fetch the same ipxe.efi, and the send path then
 * allocates nothing. The cache holds at most `limitBytes`; past that the least recently used file
 * goes (transfers that hold its packet list keep it until they end). A client choosing an odd block
 * size per request can therefore not make the server keep a copy of a file per block size.
 */
export class PacketCache {
  readonly #entries = new Map<Buffer, { bySize: Map<number, Buffer[]>; bytes: number }>();
  #bytes = 0;

  constructor(private readonly limitBytes = 256 * 1024 * 1024) {}

  get bytes(): number {
    return this.#bytes;
  }

  /** The (lazily filled) packet list of this file at this block size. */
  packets(data: Buffer, blockSize: number): Buffer[] {
    let entry = this.#entries.get(data);
    if (entry) this.#entries.delete(data); // re-insert: Map order is the LRU order
    entry ??= { bySize: new Map(), bytes: 0 };
    this.#entries.set(data, entry);
    let list = entry.bySize.get(blockSize);
    if (!list) entry.bySize.set(blockSize, (list = []));
    return list;
  }

  /** Accounts for a packet just stored in a list of `data`'s entry; evicts the oldest files if over. */
  added(data: Buffer, bytes: number): void {
    const entry = this.#entries.get(data);
    if (!entry) return;
    entry.bytes += bytes;
    this.#bytes += bytes;
    for (const [key, old] of this.#entries) {
      if (this.#bytes <= this.limitBytes) break;
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
  }
}
