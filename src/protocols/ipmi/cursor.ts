/**
 * A bounds-checked little-endian reader for IPMI's untrusted bytes (IPMI is little-endian on the
 * wire except RMCP's own header). Reading past the end is an IpmiDecodeError, never a silent zero.
 */
export class IpmiDecodeError extends Error {
  override readonly name = 'IpmiDecodeError';
}

export class Cursor {
  #offset: number;
  constructor(
    private readonly buf: Buffer,
    offset = 0,
    private readonly end = buf.length,
  ) {
    this.#offset = offset;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.end - this.#offset;
  }

  #need(bytes: number, what: string): void {
    if (bytes < 0 || this.#offset + bytes > this.end)
      throw new IpmiDecodeError(`${what}: needs ${bytes} bytes, ${this.remaining} left`);
  }

  u8(what = 'byte'): number {
    this.#need(1, what);
    return this.buf[this.#offset++]!;
  }

  u16(what = 'uint16'): number {
    this.#need(2, what);
    const v = this.buf.readUInt16LE(this.#offset);
    this.#offset += 2;
    return v;
  }

  u32(what = 'uint32'): number {
    this.#need(4, what);
    const v = this.buf.readUInt32LE(this.#offset);
    this.#offset += 4;
    return v;
  }

  bytes(length: number, what = 'bytes'): Buffer {
    this.#need(length, what);
    const v = this.buf.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return v;
  }

  rest(): Buffer {
    return this.bytes(this.remaining, 'rest');
  }
}

export const u32le = (value: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
};
export const u16le = (value: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
};
