/**
 * The boot decision: what a machine that PXE-booted into iPXE is told to do next.
 * One pure function of the host's record (after admission control ran) and the client's platform.
 * The disk comes first in the BIOS order, so "local" means: leave iPXE and let the firmware go on.
 */
import type { BuildState } from '../store/schema.ts';

export type Platform = 'pcbios' | 'efi';

export interface InstallPlan {
  readonly kernelUrl: string;
  readonly initrdUrl: string;
  readonly kernelArgs: string;
}

export interface BootInput {
  /** undefined: no host has this MAC (it has just been registered as discovered). */
  readonly host:
    | {
        readonly hostname: string;
        readonly buildState: BuildState;
        readonly hasProfile: boolean;
        /** Present when admission let the host build (or it was already building). */
        readonly install?: InstallPlan | undefined;
        /** Present when the site is at its build cap and the host waits its turn (1 = next). */
        readonly queuePosition?: number | undefined;
        /** false: the request did not come from the host's reserved or leased address, so it gets no install. */
        readonly fromMachine?: boolean | undefined;
      }
    | undefined;
  readonly platform: Platform | undefined;
  readonly retrySeconds: number;
}

export type BootDecision =
  | { readonly action: 'install'; readonly hostname: string; readonly plan: InstallPlan }
  | { readonly action: 'local'; readonly hostname: string; readonly platform: Platform | undefined }
  | {
      readonly action: 'wait';
      readonly reason: 'discovered' | 'queued' | 'failed' | 'no-profile' | 'store-unreachable' | 'not-from-machine';
      readonly message: string;
      readonly retrySeconds: number;
    };

export function decideBoot(input: BootInput): BootDecision {
  const { host, retrySeconds } = input;
  // Unknown machines wait in iPXE, retrying, so that adopting them in the API takes effect on the next try.
  if (!host)
    return {
      action: 'wait',
      reason: 'discovered',
      message: 'unknown machine: registered as discovered; waiting to be adopted',
      retrySeconds,
    };
  switch (host.buildState) {
    case 'built':
      return { action: 'local', hostname: host.hostname, platform: input.platform };
    case 'discovered':
      return {
        action: 'wait',
        reason: 'discovered',
        message: `${host.hostname} is discovered; waiting to be adopted`,
        retrySeconds,
      };
    case 'failed':
      return {
        action: 'wait',
        reason: 'failed',
        message: `the last build of ${host.hostname} failed; rebuild it to try again`,
        retrySeconds,
      };
    case 'ready':
    case 'building':
      if (!host.hasProfile)
        return {
          action: 'wait',
          reason: 'no-profile',
          message: `${host.hostname} has no profile to install`,
          retrySeconds,
        };
      if (host.fromMachine === false)
        return {
          action: 'wait',
          reason: 'not-from-machine',
          message: `${host.hostname} installs only when it asks from its own address (reserved or leased)`,
          retrySeconds,
        };
      if (host.install) return { action: 'install', hostname: host.hostname, plan: host.install };
      return {
        action: 'wait',
        reason: 'queued',
        message: `site at its build cap: ${host.hostname} is number ${host.queuePosition ?? '?'} in the queue`,
        retrySeconds,
      };
  }
}
