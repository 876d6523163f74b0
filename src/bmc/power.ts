/**
 * Power and next-boot control of hosts through their BMCs. Resolves the host's login (password
 * opened for this call only), speaks the BMC's protocol — IPMI v2.0 / RMCP+ or Redfish, by the
 * BMC's type — and turns every protocol failure into one coded error: KVMF_ERR_BMC_UNREACHABLE,
 * _AUTH, _UNSUPPORTED, _PROTOCOL, _CERTIFICATE (Redfish TLS), or _NO_BMC before any packet. The
 * answers are the same for both; only `cipherSuite` (IPMI) or `auth` (Redfish) says which spoke.
 * Bounded: the IPMI client retransmits with backoff a fixed number of times, the Redfish client
 * repeats only what cannot act twice (transport.ts).
 */
import { readFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { IpmiError, withIpmiSession, type IpmiOptions, type IpmiSession } from '../protocols/ipmi/client.ts';
import * as commands from '../protocols/ipmi/commands.ts';
import {
  withRedfishSession,
  type AuthMode,
  type RedfishOptions,
  type RedfishSession,
} from '../protocols/redfish/client.ts';
import { RedfishError } from '../protocols/redfish/errors.ts';
import type { Database } from '../store/schema.ts';
import { loginFor, type BmcLogin } from './credentials.ts';
import { redfishBootdev, redfishPower, type CycleTiming } from './redfish-power.ts';
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
  /** IPMI: the RMCP+ cipher suite of the session. */
  readonly cipherSuite?: number;
  /** Redfish: how the client logged in. */
  readonly auth?: AuthMode;
}

export interface BootdevResult {
  readonly hostname: string;
  readonly device: BootTarget;
  readonly persistent: boolean;
  readonly uefi: boolean;
  readonly cipherSuite?: number;
  readonly auth?: AuthMode;
}

export interface BmcDeps {
  readonly keyring: () => Keyring;
  /** IPMI timing and suites (tests shorten the waits). */
  readonly ipmi?: IpmiOptions;
  /** Redfish timing, and the CA file for BMCs that name none (else the system's CA store). */
  readonly redfish?: RedfishOptions & CycleTiming & { readonly caFile?: string };
}

const KIND_CODE = {
  unreachable: ErrorCode.BmcUnreachable,
  auth: ErrorCode.BmcAuth,
  unsupported: ErrorCode.BmcUnsupported,
  protocol: ErrorCode.BmcProtocol,
  completion: ErrorCode.BmcProtocol,
  certificate: ErrorCode.BmcCertificate,
} as const;

export class PowerService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly deps: BmcDeps,
  ) {}

  async power(hostname: string, action: PowerAction): Promise<PowerResult> {
    const login = await loginFor(this.db, this.deps.keyring, hostname);
    if (login.type === 'redfish')
      return this.#redfish(hostname, login, async (session) => ({
        hostname,
        action,
        ...(await redfishPower(session, action, this.deps.redfish)),
        auth: session.auth,
      }));
    return this.#ipmi(hostname, login, async (session) => {
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
    const login = await loginFor(this.db, this.deps.keyring, hostname);
    if (login.type === 'redfish')
      return this.#redfish(hostname, login, async (session) => {
        await redfishBootdev(session, flags);
        return { hostname, ...flags, auth: session.auth };
      });
    return this.#ipmi(hostname, login, async (session) => {
      await session.request(commands.setBootFlags(flags));
      return { hostname, ...flags, cipherSuite: session.info.suite };
    });
  }

  async #ipmi<T>(hostname: string, login: BmcLogin, work: (session: IpmiSession) => Promise<T>): Promise<T> {
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

  async #redfish<T>(hostname: string, login: BmcLogin, work: (session: RedfishSession) => Promise<T>): Promise<T> {
    const options = this.deps.redfish ?? {};
    const caFile = login.caFile ?? options.caFile;
    let ca: Buffer | undefined;
    if (!login.insecure && caFile) {
      try {
        ca = readFileSync(caFile);
      } catch (error) {
        throw new KvmfleetError(
          ErrorCode.BmcCertificate,
          `host ${hostname}: the BMC CA file ${caFile} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
    }
    try {
      return await withRedfishSession(
        {
          host: login.host,
          port: login.port,
          username: login.username,
          password: login.password,
          tls: { insecure: login.insecure === true, ...(ca ? { ca } : {}) },
        },
        options,
        work,
      );
    } catch (error) {
      if (error instanceof RedfishError)
        throw new KvmfleetError(
          KIND_CODE[error.kind],
          `host ${hostname}: ${error.message}`,
          error.status !== undefined
            ? { status: error.status, ...(error.messageId ? { messageId: error.messageId } : {}) }
            : undefined,
        );
      throw error;
    }
  }
}

/** What `serve` gives the API: the keyring from KVMFLEET_SECRET_KEY or the data directory's key file, loaded at first use. */
export function bmcDepsFor(dataDir: string, env: NodeJS.ProcessEnv = process.env): BmcDeps {
  let ring: Keyring | undefined;
  // KVMFLEET_BMC_CA_FILE: the CA that vouches for Redfish BMCs naming no CA file of their own.
  const caFile = env.KVMFLEET_BMC_CA_FILE;
  return { keyring: () => (ring ??= loadKeyring(dataDir)), ...(caFile ? { redfish: { caFile } } : {}) };
}
