/**
 * The few Redfish resources kvmfleet reads, parsed from untrusted JSON into typed views (DMTF
 * DSP0266 and the ServiceRoot, ComputerSystem and Session schemas). Only what is used is read;
 * everything else a service adds (Oem, links, status) is ignored. A missing or mistyped property
 * that is needed is a protocol error naming it. Links must be paths on the same service
 * (`/redfish/v1/…`), never a URL elsewhere: a BMC cannot send this client, and the credentials it
 * carries, to another host.
 */
import { RedfishError } from './errors.ts';

/** DSP0266 §6.5 ComputerSystem.PowerState. */
export const POWER_STATES = ['On', 'Off', 'PoweringOn', 'PoweringOff', 'Paused'] as const;
export type RedfishPowerState = (typeof POWER_STATES)[number];
/** Resource.ResetType: every value the schema defines. */
export const RESET_TYPES = [
  'On',
  'ForceOff',
  'GracefulShutdown',
  'GracefulRestart',
  'ForceRestart',
  'Nmi',
  'ForceOn',
  'PushPowerButton',
  'PowerCycle',
  'Suspend',
  'Pause',
  'Resume',
  'FullPowerCycle',
] as const;
export type ResetType = (typeof RESET_TYPES)[number];
/** ComputerSystem.BootSource (the targets of BootSourceOverrideTarget). */
export const BOOT_SOURCES = [
  'None',
  'Pxe',
  'Floppy',
  'Cd',
  'Usb',
  'Hdd',
  'BiosSetup',
  'Utilities',
  'Diags',
  'UefiShell',
  'UefiTarget',
  'SDCard',
  'UefiHttp',
  'RemoteDrive',
  'UefiBootNext',
  'Recovery',
] as const;
export type BootSource = (typeof BOOT_SOURCES)[number];
export const OVERRIDE_ENABLED = ['Disabled', 'Once', 'Continuous'] as const;
export type OverrideEnabled = (typeof OVERRIDE_ENABLED)[number];
export const OVERRIDE_MODES = ['Legacy', 'UEFI'] as const;
export type OverrideMode = (typeof OVERRIDE_MODES)[number];

const MAX_PATH = 512;
const MAX_MEMBERS = 1024;
const MAX_ALLOWABLE = 64;
const ODATA_PATH = /^\/redfish\/v1(\/[A-Za-z0-9._~:@!$&'()*+,;=%-]+)*\/?$/;

type Json = Record<string, unknown>;

const bad = (what: string, why: string) => new RedfishError('protocol', `${what}: ${why}`);

export function parseJson(body: Buffer, what: string): unknown {
  if (body.length === 0) throw bad(what, 'empty answer where a JSON resource was expected');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw bad(what, 'the answer is not JSON');
  }
}

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(what, 'is not a JSON object');
  return value as Json;
}

/** A resource path on this service; `..` and anything outside /redfish/v1 are refused. */
export function odataPath(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length > MAX_PATH || !ODATA_PATH.test(value) || /\/\.\.?(\/|$)/.test(value))
    throw bad(what, 'is not a /redfish/v1 path on this service');
  return value;
}

function link(parent: Json, name: string, what: string): string | undefined {
  const value = parent[name];
  if (value === undefined) return undefined;
  return odataPath(object(value, `${what}.${name}`)['@odata.id'], `${what}.${name}.@odata.id`);
}

function allowable<T extends string>(value: unknown, known: readonly T[], what: string): T[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > MAX_ALLOWABLE) throw bad(what, 'is not a list of values');
  // Values this client does not know (a newer schema) are kept out: it never sends them anyway.
  return value.filter((v): v is T => typeof v === 'string' && (known as readonly string[]).includes(v));
}

function enumValue<T extends string>(value: unknown, known: readonly T[], what: string): T {
  if (typeof value !== 'string' || !(known as readonly string[]).includes(value))
    throw bad(what, `is ${JSON.stringify(value)?.slice(0, 40)}, not one of ${known.join(', ')}`);
  return value as T;
}

export interface ServiceRoot {
  readonly systems: string;
  /** The Sessions collection (Links.Sessions, DSP0266 §13.3.4), if the root names it. */
  readonly sessions?: string;
  readonly sessionService?: string;
  readonly redfishVersion?: string;
}

export function parseServiceRoot(value: unknown): ServiceRoot {
  const root = object(value, 'service root');
  const systems = link(root, 'Systems', 'service root');
  if (!systems) throw new RedfishError('unsupported', 'service root: no Systems collection');
  const links = root.Links === undefined ? undefined : object(root.Links, 'service root Links');
  const sessions = links ? link(links, 'Sessions', 'service root Links') : undefined;
  const sessionService = link(root, 'SessionService', 'service root');
  const version = typeof root.RedfishVersion === 'string' ? root.RedfishVersion.slice(0, 16) : undefined;
  return {
    systems,
    ...(sessions ? { sessions } : {}),
    ...(sessionService ? { sessionService } : {}),
    ...(version ? { redfishVersion: version } : {}),
  };
}

/** A resource collection's member paths. */
export function parseCollection(value: unknown, what: string): string[] {
  const collection = object(value, what);
  const members = collection.Members;
  if (!Array.isArray(members) || members.length > MAX_MEMBERS) throw bad(`${what}.Members`, 'is not a list');
  return members.map((m, i) => odataPath(object(m, `${what}.Members[${i}]`)['@odata.id'], `${what}.Members[${i}]`));
}

export interface ResetAction {
  readonly target: string;
  /** ResetType@Redfish.AllowableValues; absent: the service did not say (any value may be tried). */
  readonly allowable?: readonly ResetType[];
}

export interface ComputerSystem {
  readonly path: string;
  readonly powerState: RedfishPowerState;
  readonly reset?: ResetAction;
  readonly boot?: {
    readonly targets?: readonly BootSource[];
    /** BootSourceOverrideMode is shown: the service lets it be set. */
    readonly hasMode: boolean;
    readonly modes?: readonly OverrideMode[];
  };
}

export function parseComputerSystem(value: unknown, path: string): ComputerSystem {
  const system = object(value, path);
  const powerState = enumValue(system.PowerState, POWER_STATES, `${path} PowerState`);
  const actions = system.Actions === undefined ? undefined : object(system.Actions, `${path} Actions`);
  const resetRaw = actions?.['#ComputerSystem.Reset'];
  let reset: ResetAction | undefined;
  if (resetRaw !== undefined) {
    const r = object(resetRaw, `${path} #ComputerSystem.Reset`);
    const allowed = allowable(
      r['ResetType@Redfish.AllowableValues'],
      RESET_TYPES,
      `${path} ResetType@Redfish.AllowableValues`,
    );
    reset = {
      target: odataPath(r.target, `${path} #ComputerSystem.Reset target`),
      ...(allowed ? { allowable: allowed } : {}),
    };
  }
  let boot: ComputerSystem['boot'];
  if (system.Boot !== undefined) {
    const b = object(system.Boot, `${path} Boot`);
    const targets = allowable(
      b['BootSourceOverrideTarget@Redfish.AllowableValues'],
      BOOT_SOURCES,
      `${path} BootSourceOverrideTarget@Redfish.AllowableValues`,
    );
    const modes = allowable(
      b['BootSourceOverrideMode@Redfish.AllowableValues'],
      OVERRIDE_MODES,
      `${path} BootSourceOverrideMode@Redfish.AllowableValues`,
    );
    boot = {
      hasMode: b.BootSourceOverrideMode !== undefined,
      ...(targets ? { targets } : {}),
      ...(modes ? { modes } : {}),
    };
  }
  return { path, powerState, ...(reset ? { reset } : {}), ...(boot ? { boot } : {}) };
}

/** A Redfish error answer (DSP0266 §9.6.7): the first MessageId and a bounded message, if any. */
export function parseErrorAnswer(body: Buffer): { messageId?: string; message?: string } {
  try {
    const error = object(object(JSON.parse(body.toString('utf8')), 'answer').error, 'error');
    const info = Array.isArray(error['@Message.ExtendedInfo']) ? error['@Message.ExtendedInfo'][0] : undefined;
    const id = typeof info?.MessageId === 'string' ? info.MessageId : error.code;
    const text = typeof info?.Message === 'string' ? info.Message : error.message;
    return {
      ...(typeof id === 'string' ? { messageId: id.slice(0, 80) } : {}),
      ...(typeof text === 'string' ? { message: text.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200) } : {}),
    };
  } catch {
    return {};
  }
}
