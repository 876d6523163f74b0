/**
 * The basic remote_protocol.x types kvmfleet reads and writes: strings, domains, networks,
 * and remote_error, which a failed call carries and which becomes a typed LibvirtError.
 */
import { XdrReader, XdrWriter } from '../xdr/xdr.ts';

/** remote_protocol.x: REMOTE_STRING_MAX */
export const STRING_MAX = 4_194_304;
export const UUID_LENGTH = 16;

export interface RemoteDomain {
  readonly name: string;
  readonly uuid: Buffer;
  readonly id: number;
}

export interface RemoteNetwork {
  readonly name: string;
  readonly uuid: Buffer;
}

export interface RemoteStoragePool {
  readonly name: string;
  readonly uuid: Buffer;
}

export interface RemoteStorageVolume {
  readonly pool: string;
  readonly name: string;
  readonly key: string;
}

export const readString = (r: XdrReader) => r.string(STRING_MAX);

export function readPool(r: XdrReader): RemoteStoragePool {
  return { name: readString(r), uuid: r.fixedOpaque(UUID_LENGTH) };
}

export function writePool(w: XdrWriter, pool: RemoteStoragePool): void {
  w.string(pool.name).fixedOpaque(pool.uuid);
}

export function readVolume(r: XdrReader): RemoteStorageVolume {
  return { pool: readString(r), name: readString(r), key: readString(r) };
}

export function writeVolume(w: XdrWriter, volume: RemoteStorageVolume): void {
  w.string(volume.pool).string(volume.name).string(volume.key);
}
export const writeString = (w: XdrWriter, value: string) => void w.string(value);

export function readDomain(r: XdrReader): RemoteDomain {
  return { name: readString(r), uuid: r.fixedOpaque(UUID_LENGTH), id: r.int() };
}

export function writeDomain(w: XdrWriter, domain: RemoteDomain): void {
  w.string(domain.name).fixedOpaque(domain.uuid).int(domain.id);
}

export function readNetwork(r: XdrReader): RemoteNetwork {
  return { name: readString(r), uuid: r.fixedOpaque(UUID_LENGTH) };
}

export function writeNetwork(w: XdrWriter, network: RemoteNetwork): void {
  w.string(network.name).fixedOpaque(network.uuid);
}

export function uuidToString(uuid: Buffer): string {
  const hex = uuid.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A failed libvirt call: libvirt's own error code, domain and message (virerror.h). */
export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';
  constructor(
    readonly code: number,
    readonly domain: number,
    message: string,
    readonly level: number,
  ) {
    super(message);
  }
}

/** remote_error: code, domain, message*, level, dom*, str1*, str2*, str3*, int1, int2, net*. */
export function readError(r: XdrReader): LibvirtError {
  const code = r.int();
  const domain = r.int();
  const message = r.optional(readString) ?? `libvirt error ${code}`;
  const level = r.int();
  r.optional(readDomain);
  r.optional(readString);
  r.optional(readString);
  r.optional(readString);
  r.int();
  r.int();
  r.optional(readNetwork);
  return new LibvirtError(code, domain, message, level);
}

export function writeError(
  w: XdrWriter,
  error: { code: number; domain: number; message: string | null; level: number },
): void {
  w.int(error.code).int(error.domain).optional(error.message, writeString).int(error.level);
  w.bool(false).bool(false).bool(false).bool(false).int(0).int(0).bool(false);
}
