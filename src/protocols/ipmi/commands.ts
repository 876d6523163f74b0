/**
 * The IPMI commands kvmfleet sends, as request builders and response parsers (pure):
 * App: Get Channel Authentication Capabilities (§22.13), Set Session Privilege Level (§22.18),
 * Close Session (§22.19); Chassis: Get Chassis Status (§28.2), Chassis Control (§28.3),
 * Set/Get System Boot Options, boot flags parameter 5 (§28.12–28.13, table 28-14).
 */
import { Cursor, IpmiDecodeError, u32le } from './cursor.ts';
import { NetFn, type IpmiRequest } from './message.ts';

export const enum Cmd {
  GetChannelAuthCapabilities = 0x38,
  SetSessionPrivilege = 0x3b,
  CloseSession = 0x3c,
  GetChassisStatus = 0x01,
  ChassisControl = 0x02,
  SetSystemBootOptions = 0x08,
  GetSystemBootOptions = 0x09,
}

/** Channel 0x0E is "this channel"; bit 7 asks for the IPMI v2.0 extended data. */
export function getChannelAuthCapabilities(privilege: number): IpmiRequest {
  return { netFn: NetFn.App, cmd: Cmd.GetChannelAuthCapabilities, data: Buffer.from([0x8e, privilege]) };
}

export interface ChannelAuthCapabilities {
  readonly channel: number;
  readonly ipmiV20: boolean;
}

export function parseChannelAuthCapabilities(data: Buffer): ChannelAuthCapabilities {
  const c = new Cursor(data);
  const channel = c.u8('channel');
  const support = c.u8('auth type support');
  c.u8('auth status');
  const extended = c.u8('extended capabilities');
  // bit 7 of the support byte: the extended byte is IPMI v2.0 data; its bit 1: IPMI v2.0 connections.
  return { channel, ipmiV20: (support & 0x80) !== 0 && (extended & 0x02) !== 0 };
}

export function setSessionPrivilege(privilege: number): IpmiRequest {
  return { netFn: NetFn.App, cmd: Cmd.SetSessionPrivilege, data: Buffer.from([privilege]) };
}

export function closeSession(bmcSessionId: number): IpmiRequest {
  return { netFn: NetFn.App, cmd: Cmd.CloseSession, data: u32le(bmcSessionId) };
}

export function getChassisStatus(): IpmiRequest {
  return { netFn: NetFn.Chassis, cmd: Cmd.GetChassisStatus, data: Buffer.alloc(0) };
}

export type PowerState = 'on' | 'off';

export function parseChassisStatus(data: Buffer): { power: PowerState } {
  const current = new Cursor(data).u8('current power state');
  return { power: current & 0x01 ? 'on' : 'off' };
}

/** Chassis Control's request byte (table 28-4). */
export const CHASSIS_CONTROL = { off: 0x00, on: 0x01, cycle: 0x02, reset: 0x03, soft: 0x05 } as const;
export type ChassisAction = keyof typeof CHASSIS_CONTROL;

export function chassisControl(action: ChassisAction): IpmiRequest {
  return { netFn: NetFn.Chassis, cmd: Cmd.ChassisControl, data: Buffer.from([CHASSIS_CONTROL[action]]) };
}

/** Boot device selector, bits 5:2 of boot flags data 2 (table 28-14). */
export const BOOT_DEVICE = { none: 0x0, pxe: 0x1, disk: 0x2, cdrom: 0x5, bios: 0x6 } as const;
export type BootDevice = keyof typeof BOOT_DEVICE;

export interface BootFlags {
  readonly device: BootDevice;
  /** Every boot from now on (else the next boot only). */
  readonly persistent: boolean;
  /** EFI boot (else PC-compatible/legacy). */
  readonly uefi: boolean;
}

const BOOT_FLAGS_PARAM = 5;
const VALID = 0x80;
const PERSISTENT = 0x40;
const EFI = 0x20;

export function encodeBootFlags(flags: BootFlags): Buffer {
  return Buffer.from([
    VALID | (flags.persistent ? PERSISTENT : 0) | (flags.uefi ? EFI : 0),
    BOOT_DEVICE[flags.device] << 2,
    0,
    0,
    0,
  ]);
}

export function decodeBootFlags(data: Buffer): (BootFlags & { valid: boolean }) | { valid: false; raw: Buffer } {
  const c = new Cursor(data);
  const b1 = c.u8('boot flags 1');
  const b2 = c.u8('boot flags 2');
  const selector = (b2 >> 2) & 0x0f;
  const device = (Object.keys(BOOT_DEVICE) as BootDevice[]).find((d) => BOOT_DEVICE[d] === selector);
  if (!device) return { valid: false, raw: Buffer.from(data) };
  return { valid: (b1 & VALID) !== 0, persistent: (b1 & PERSISTENT) !== 0, uefi: (b1 & EFI) !== 0, device };
}

/** Only parameter 5 is written: ipmi_sim answers parameter 0 (set in progress) "invalid data field", and real BMCs take 5 alone. */
export function setBootFlags(flags: BootFlags): IpmiRequest {
  return {
    netFn: NetFn.Chassis,
    cmd: Cmd.SetSystemBootOptions,
    data: Buffer.concat([Buffer.from([BOOT_FLAGS_PARAM]), encodeBootFlags(flags)]),
  };
}

export function getBootFlags(): IpmiRequest {
  return { netFn: NetFn.Chassis, cmd: Cmd.GetSystemBootOptions, data: Buffer.from([BOOT_FLAGS_PARAM, 0, 0]) };
}

/** Get System Boot Options' answer: version, parameter (bit 7: marked invalid), data. */
export function parseBootOptions(data: Buffer): { parameterValid: boolean; flags: ReturnType<typeof decodeBootFlags> } {
  const c = new Cursor(data);
  c.u8('parameter version');
  const parameter = c.u8('parameter');
  if ((parameter & 0x7f) !== BOOT_FLAGS_PARAM)
    throw new IpmiDecodeError(`asked for boot parameter 5, got ${parameter & 0x7f}`);
  return { parameterValid: (parameter & 0x80) === 0, flags: decodeBootFlags(c.rest()) };
}
