/** The inventory as the API and CLI see it (camelCase), and what callers send to change it. */
import type { Bmc, BuildState } from '../store/schema.ts';

export interface Site {
  readonly name: string;
  readonly description: string;
  /** At most this many hosts of the site may be building at once (admission control). */
  readonly buildCap: number;
}

export interface SiteInput {
  name: string;
  description?: string;
  buildCap?: number;
}

export interface DynamicRange {
  readonly start: string;
  readonly end: string;
}

export interface Network {
  readonly name: string;
  readonly site: string;
  readonly cidr: string;
  readonly gateway: string | null;
  readonly dns: readonly string[];
  readonly domain: string;
  readonly dynamicRange: DynamicRange | null;
  /** Relay agent (giaddr) addresses that forward this network's DHCP traffic. */
  readonly relays: readonly string[];
  readonly vlan: number | null;
  readonly leaseSeconds: number;
}

export interface NetworkInput {
  name: string;
  site: string;
  cidr: string;
  gateway?: string | null;
  dns?: string[];
  domain?: string;
  dynamicRange?: DynamicRange | null;
  relays?: string[];
  vlan?: number | null;
  leaseSeconds?: number;
}

export interface Profile {
  readonly name: string;
  readonly os: string;
  readonly arch: string;
  readonly installTreeUrl: string;
  readonly kernelPath: string;
  readonly initrdPath: string;
  readonly kickstartTemplate: string;
  readonly packages: readonly string[];
  readonly kernelArgs: string;
  /** crypt(3) hash; never returned by the API. */
  readonly hasRootPassword: boolean;
}

export interface ProfileInput {
  name: string;
  os: string;
  arch?: string;
  installTreeUrl: string;
  kernelPath?: string;
  initrdPath?: string;
  kickstartTemplate?: string;
  packages?: string[];
  kernelArgs?: string;
  rootPasswordHash?: string;
}

export interface Host {
  readonly hostname: string;
  readonly macs: readonly string[];
  readonly ip: string | null;
  readonly network: string | null;
  readonly site: string | null;
  readonly profile: string | null;
  readonly smbiosUuid: string | null;
  readonly bmc: Bmc | null;
  readonly buildState: BuildState;
  readonly stateChangedAt: string;
  /** The BMC's last power reading (bmc/power-poller.ts); absent until the host's BMC was read. */
  readonly power?: HostPower;
}

export interface HostPower {
  readonly state: 'on' | 'off' | 'unknown';
  readonly checkedAt: string;
  /** Why the state is unknown: the BMC error's code. */
  readonly error?: string;
}

export interface HostInput {
  hostname: string;
  macs: string[];
  ip?: string | null;
  network: string;
  profile: string;
  smbiosUuid?: string | null;
  bmc?: Bmc | null;
}

export const OS_FAMILIES = ['rhel6', 'rhel7', 'rhel8', 'rhel9', 'rhel10'] as const;
export type OsFamily = (typeof OS_FAMILIES)[number];
