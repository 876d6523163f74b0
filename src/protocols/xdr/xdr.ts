/**
 * XDR (RFC 4506): a cursor reader and a chainable writer. Everything is 4-byte aligned and
 * big-endian. The reader is for untrusted bytes: every length is checked against what remains and
 * against a caller's limit before anything is read, and a violation is an XdrError.
 */
export class XdrError extends Error {
  override readonly name = 'XdrError';
}

const pad = (length: number) => (4 - (length % 4)) % 4;

export class XdrReader {
  #offset: number;
  constructor(
    private readonly buf: Buffer,
    offset = 0,
  ) {
    this.#offset = offset;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.buf.length - this.#offset;
  }

  #need(bytes: number, what: string): void {
    if (bytes < 0 || this.#offset + bytes > this.buf.length)
      throw new XdrError(`${what}: needs ${bytes} bytes, ${this.remaining} left`);
  }

  int(): number {
    this.#need(4, 'int');
    const value = this.buf.readInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  uint(): number {
    this.#need(4, 'unsigned int');
    const value = this.buf.readUInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  hyper(): bigint {
    this.#need(8, 'hyper');
    const value = this.buf.readBigInt64BE(this.#offset);
    this.#offset += 8;
    return value;
  }

  uhyper(): bigint {
    this.#need(8, 'unsigned hyper');
    const value = this.buf.readBigUInt64BE(this.#offset);
    this.#offset += 8;
    return value;
  }

  bool(): boolean {
    const value = this.uint();
    if (value > 1) throw new XdrError(`bool of value ${value}`);
    return value === 1;
  }

  /** Fixed-length opaque data. */
  fixedOpaque(length: number): Buffer {
    this.#need(length + pad(length), 'fixed opaque');
    const value = Buffer.from(this.buf.subarray(this.#offset, this.#offset + length));
    this.#offset += length + pad(length);
    return value;
  }

  /** Variable-length opaque data of at most maxLength bytes. */
  opaque(maxLength: number): Buffer {
    const length = this.uint();
    if (length > maxLength) throw new XdrError(`opaque of ${length} bytes exceeds its limit of ${maxLength}`);
    return this.fixedOpaque(length);
  }

  string(maxLength: number): string {
    return this.opaque(maxLength).toString('utf8');
  }

  /** XDR optional-data (`*T`): a bool, then the value when true. */
  optional<T>(read: (r: XdrReader) => T): T | null {
    return this.bool() ? read(this) : null;
  }

  /** Variable-length array of at most maxCount elements. */
  array<T>(maxCount: number, read: (r: XdrReader) => T): T[] {
    const count = this.uint();
    if (count > maxCount) throw new XdrError(`array of ${count} elements exceeds its limit of ${maxCount}`);
    // Each element takes at least 4 bytes: a count larger than what remains is a lie, refuse before looping.
    if (count * 4 > this.remaining)
      throw new XdrError(`array of ${count} elements cannot fit in ${this.remaining} bytes`);
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(read(this));
    return items;
  }

  /** Asserts that the whole buffer was consumed. */
  end(): void {
    if (this.remaining !== 0) throw new XdrError(`${this.remaining} unexpected trailing bytes`);
  }
}

export class XdrWriter {
  #buf: Buffer;
  #length = 0;

  constructor(initialSize = 256) {
    this.#buf = Buffer.alloc(initialSize);
  }

  #ensure(bytes: number): void {
    if (this.#length + bytes <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#length + bytes) size *= 2;
    const grown = Buffer.alloc(size);
    this.#buf.copy(grown, 0, 0, this.#length);
    this.#buf = grown;
  }

  int(value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff)
      throw new RangeError(`int out of range: ${value}`);
    this.#ensure(4);
    this.#buf.writeInt32BE(value, this.#length);
    this.#length += 4;
    return this;
  }

  uint(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
      throw new RangeError(`unsigned int out of range: ${value}`);
    this.#ensure(4);
    this.#buf.writeUInt32BE(value, this.#length);
    this.#length += 4;
    return this;
  }

  hyper(value: bigint): this {
    this.#ensure(8);
    this.#buf.writeBigInt64BE(value, this.#length);
    this.#length += 8;
    return this;
  }

  uhyper(value: bigint): this {
    this.#ensure(8);
    this.#buf.writeBigUInt64BE(value, this.#length);
    this.#length += 8;
    return this;
  }

  bool(value: boolean): this {
    return this.uint(value ? 1 : 0);
  }

  fixedOpaque(value: Buffer): this {
    this.#ensure(value.length + pad(value.length));
    value.copy(this.#buf, this.#length);
    this.#buf.fill(0, this.#length + value.length, this.#length + value.length + pad(value.length));
    this.#length += value.length + pad(value.length);
    return this;
  }

  opaque(value: Buffer): this {
    return this.uint(value.length).fixedOpaque(value);
  }

  string(value: string): this {
    return this.opaque(Buffer.from(value, 'utf8'));
  }

  optional<T>(value: T | null | undefined, write: (w: XdrWriter, v: T) => void): this {
    this.bool(value !== null && value !== undefined);
    if (value !== null && value !== undefined) write(this, value);
    return this;
  }

  array<T>(values: readonly T[], write: (w: XdrWriter, v: T) => void): this {
    this.uint(values.length);
    for (const value of values) write(this, value);
    return this;
  }

  get length(): number {
    return this.#length;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#length));
  }
}
