/**
 * The domain spec kept in the store (vms.domain_spec, templates.domain_spec) read back as a
 * DomainSpec. The store types the column as plain JSON (src/store does not know vms' types), so it is
 * checked field by field here, where it crosses into vms, instead of being cast: a row written by an
 * older or broken kvmfleet is refused with the field at fault, not cloned from.
 */
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { DomainType } from './domain-type.ts';
import type { BootDevice, DiskSpec, DomainSpec, InterfaceSpec } from './domain-xml.ts';

type Json = Record<string, unknown>;

class BadSpec extends Error {}

function object(value: unknown, at: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadSpec(`${at} is not an object`);
  return value as Json;
}

function string(o: Json, key: string, at: string): string {
  const value = o[key];
  if (typeof value !== 'string') throw new BadSpec(`${at}.${key} is not a string`);
  return value;
}

/** `{ key: read(o, key) }` when the key is present, `{}` when it is not (to spread into the result). */
function optional<K extends string, T>(o: Json, key: K, read: (o: Json, key: K) => T): Partial<Record<K, T>> {
  const out: Partial<Record<K, T>> = {};
  if (o[key] !== undefined) out[key] = read(o, key);
  return out;
}

function oneOf<T extends string>(choices: readonly T[], at: string) {
  return (o: Json, key: string): T => {
    const value = o[key];
    const found = choices.find((c) => c === value);
    if (found === undefined) throw new BadSpec(`${at}.${key} is not one of ${choices.join(', ')}`);
    return found;
  };
}

function wholeNumber(o: Json, key: string, at: string): number {
  const value = o[key];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new BadSpec(`${at}.${key} is not a whole number`);
  return value;
}

function boolean(at: string) {
  return (o: Json, key: string): boolean => {
    if (typeof o[key] !== 'boolean') throw new BadSpec(`${at}.${key} is not true or false`);
    return o[key];
  };
}

function list<T>(o: Json, key: string, at: string, read: (item: unknown, at: string) => T): T[] {
  const value = o[key];
  if (!Array.isArray(value)) throw new BadSpec(`${at}.${key} is not a list`);
  return value.map((item, i) => read(item, `${at}.${key}[${i}]`));
}

const DOMAIN_TYPES: readonly DomainType[] = ['kvm', 'qemu'];

function disk(value: unknown, at: string): DiskSpec {
  const o = object(value, at);
  return {
    source: string(o, 'source', at),
    format: oneOf(['qcow2', 'raw'] as const, at)(o, 'format'),
    ...optional(o, 'device', oneOf(['disk', 'cdrom'] as const, at)),
    ...optional(o, 'bus', oneOf(['virtio', 'sata', 'scsi'] as const, at)),
    ...optional(o, 'readonly', boolean(at)),
  };
}

function nic(value: unknown, at: string): InterfaceSpec {
  const o = object(value, at);
  const text = (o: Json, key: string) => string(o, key, at);
  return {
    ...optional(o, 'bridge', text),
    ...optional(o, 'network', text),
    ...optional(o, 'mac', text),
    ...optional(o, 'model', oneOf(['virtio', 'e1000'] as const, at)),
    ...optional(o, 'rom', boolean(at)),
  };
}

function bootDevice(value: unknown, at: string): BootDevice {
  if (typeof value !== 'string') throw new BadSpec(`${at} is not a boot device`);
  const match = /^(disk|net):(\d{1,3})$/.exec(value);
  if (!match) throw new BadSpec(`${at} is not a boot device ("disk:N" or "net:N")`);
  return match[1] === 'disk' ? `disk:${Number(match[2])}` : `net:${Number(match[2])}`;
}

function serial(o: Json, key: string): NonNullable<DomainSpec['serial']> {
  if (o[key] === 'pty') return 'pty';
  const at = `spec.${key}`;
  return { file: string(object(o[key], at), 'file', at) };
}

function graphics(o: Json, key: string): NonNullable<DomainSpec['graphics']> {
  const at = `spec.${key}`;
  const g = object(o[key], at);
  const text = (g: Json, k: string) => string(g, k, at);
  return {
    type: oneOf(['vnc', 'spice'] as const, at)(g, 'type'),
    ...optional(g, 'password', text),
    ...optional(g, 'listen', text),
  };
}

function directBoot(o: Json, key: string): NonNullable<DomainSpec['directBoot']> {
  const at = `spec.${key}`;
  const d = object(o[key], at);
  const text = (d: Json, k: string) => string(d, k, at);
  return { kernel: string(d, 'kernel', at), ...optional(d, 'initrd', text), ...optional(d, 'cmdline', text) };
}

function uefi(o: Json, key: string): NonNullable<DomainSpec['uefi']> {
  const at = `spec.${key}`;
  const u = object(o[key], at);
  return { loader: string(u, 'loader', at), varsTemplate: string(u, 'varsTemplate', at) };
}

/**
 * The stored JSON as a DomainSpec; a bad one is an internal error (kvmfleet wrote it) naming `of` (e.g.
 * 'template "t1"') and the first field that is missing or of the wrong kind.
 */
export function readDomainSpec(value: unknown, of: string): DomainSpec {
  try {
    const at = 'spec';
    const o = object(value, at);
    const text = (o: Json, key: string) => string(o, key, at);
    return {
      name: string(o, 'name', at),
      ...optional(o, 'uuid', text),
      type: oneOf(DOMAIN_TYPES, at)(o, 'type'),
      memoryMiB: wholeNumber(o, 'memoryMiB', at),
      vcpus: wholeNumber(o, 'vcpus', at),
      ...optional(o, 'machine', text),
      ...optional(o, 'firmware', oneOf(['bios', 'uefi'] as const, at)),
      ...optional(o, 'uefi', uefi),
      ...optional(o, 'disks', (o, key) => list(o, key, at, disk)),
      ...optional(o, 'interfaces', (o, key) => list(o, key, at, nic)),
      ...optional(o, 'bootOrder', (o, key) => list(o, key, at, bootDevice)),
      ...optional(o, 'serial', serial),
      ...optional(o, 'graphics', graphics),
      ...optional(o, 'directBoot', directBoot),
      ...optional(o, 'description', text),
    };
  } catch (error) {
    if (error instanceof BadSpec)
      throw new KvmfleetError(ErrorCode.Internal, `the stored domain spec of ${of} is unusable: ${error.message}`);
    throw error;
  }
}
