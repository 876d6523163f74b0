/**
 * Power and next-boot control of hosts through their BMCs. Resolves the host's login (password
 * opened for this call only), speaks the BMC's protocol, and turns every protocol failure into one
 * coded error: KVMF_ERR_BMC_UNREACHABLE, _AUTH, _UNSUPPORTED, _PROTOCOL (or _NO_BMC before any
 * packet). Bounded: the IPMI client retransmits with backoff a fixed number of times.
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { IpmiError, withIpmiSession, type IpmiOptions, type IpmiSession } from '../protocols/ipmi/client.ts';
import * as commands from '../protocols/ipmi/commands.ts';
import type { Database } from '../store/schema.ts';
import { loginFor, type BmcLogin } from './credentials.ts';
import { loadKeyring, type Keyring } from './secret-box.ts';

export const POWER_ACTIONS = ['status', 'on', 'off', 'soft', 'cycle', 'reset'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];
export const BOOT_DEVICES = ['pxe', 'disk'] as const;
export type BootTarget = (typeof BOOT_DEVICES)[number];

export interface PowerResult {
  readonly hostname: string;
  readonly action: PowerAction;
  /** What the BMC reports after the action (a soft off or a cycle may still show the old state). */
  readonly powerState: commands.PowerState;
  /** What was sent: a cycle of a machine that is off is a power on. */
  readonly sent: Exclude<PowerAction, 'status'> | null;
  readonly cipherSuite: number;
}

export interface BootdevResult {
  readonly hostname: string;
  readonly device: BootTarget;
  readonly persistent: boolean;
  readonly uefi: boolean;
  readonly cipherSuite: number;
}

export interface BmcDeps {
  readonly keyring: () => Keyring;
  /** IPMI timing and suites (tests shorten the waits). */
  readonly ipmi?: IpmiOptions;
}

const KIND_CODE = {
  unreachable: ErrorCode.BmcUnreachable,
  auth: ErrorCode.BmcAuth,
  unsupported: ErrorCode.BmcUnsupported,
  protocol: ErrorCode.BmcProtocol,
  completion: ErrorCode.BmcProtocol,
} as const;

export class PowerService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly deps: BmcDeps,
  ) {}

  async power(hostname: string, action: PowerAction): Promise<PowerResult> {
    return this.#ipmi(hostname, async (session) => {
      let sent: PowerResult['sent'] = null;
      if (action !== 'status') {
        const before = commands.parseChassisStatus((await session.request(commands.getChassisStatus())).data).power;
        // A cycle of a machine that is off does nothing on many BMCs (0xD5): power it on instead.
        sent = action === 'cycle' && before === 'off' ? 'on' : action;
        await session.request(commands.chassisControl(sent));
      }
      const powerState = commands.parseChassisStatus((await session.request(commands.getChassisStatus())).data).power;
      return { hostname, action, powerState, sent, cipherSuite: session.info.suite };
    });
  }

  async bootdev(
    hostname: string,
    target: { device: BootTarget; persistent?: boolean; uefi?: boolean },
  ): Promise<BootdevResult> {
    const flags = { device: target.device, persistent: target.persistent ?? false, uefi: target.uefi ?? false };
    return this.#ipmi(hostname, async (session) => {
      await session.request(commands.setBootFlags(flags));
      return { hostname, ...flags, cipherSuite: session.info.suite };
    });
  }

  async #ipmi<T>(hostname: string, work: (session: IpmiSession) => Promise<T>): Promise<T> {
    const login: BmcLogin = await loginFor(this.db, this.deps.keyring, hostname);
    if (login.type !== 'ipmi')
      throw new KvmfleetError(
        ErrorCode.BmcUnsupported,
        `host ${hostname}'s BMC speaks ${login.type}, which kvmfleet does not drive yet (IPMI only)`,
      );
    try {
      return await withIpmiSession(
        { host: login.host, port: login.port, username: login.username, password: login.password },
        this.deps.ipmi ?? {},
        work,
      );
    } catch (error) {
      if (error instanceof IpmiError)
        throw new KvmfleetError(
          KIND_CODE[error.kind],
          `host ${hostname}: ${error.message}`,
          error.status !== undefined ? { status: error.status } : undefined,
        );
      throw error;
    }
  }
}

/** What `serve` gives the API: the keyring from KVMFLEET_SECRET_KEY or the data directory's key file, loaded at first use. */
export function bmcDepsFor(dataDir: string): BmcDeps {
  let ring: Keyring | undefined;
  return { keyring: () => (ring ??= loadKeyring(dataDir)) };
}
