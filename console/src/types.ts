/**
 * What the kvmfleet API answers, as the console uses it. Where the server has a runtime-free model
 * of an answer, the console imports that type, so a change on either side fails the other's type
 * check; the rest (answers built in modules that need Node) are described here.
 */
import type { JobEvent } from '../../src/vms/job-model.ts';
import type { Permission } from '../../src/auth/policy.ts';

export type { Host, Network, Profile, Site } from '../../src/fleet/model.ts';
export type { BuildState, JobState } from '../../src/store/schema.ts';
export type { Job, JobItemResult } from '../../src/vms/job-model.ts';
export type { SiteBuilds, SiteProgress, TimelineEntry } from '../../src/fleet/build-model.ts';
export type { Permission } from '../../src/auth/policy.ts';
export type { TokenInfo, User } from '../../src/auth/model.ts';
export type { AuditEntry } from '../../src/auth/audit.ts';

export interface WhoAmI {
  readonly user: string | null;
  readonly role: string | null;
  readonly permissions: Permission[];
  /** No user exists yet and the API listens on loopback only: everything is allowed. */
  readonly open?: boolean;
}

export interface Hypervisor {
  readonly name: string;
  readonly uri: string;
  readonly site: string;
  readonly storagePool: string;
  readonly cpus: number | null;
  readonly memoryMiB: number | null;
  readonly poolCapacityBytes: number | null;
  readonly poolAvailableBytes: number | null;
  readonly domainType: string | null;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string | null;
  readonly checkedAt: string | null;
}

export interface Vm {
  readonly name: string;
  readonly hypervisor: string;
  readonly state: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly template: string | null;
  readonly cloneKind: 'linked' | 'full' | null;
  readonly ip: string | null;
  readonly live: boolean;
}

export interface VmList {
  readonly vms: Vm[];
  readonly unmanaged: { hypervisor: string; name: string; state: string }[];
}

export interface Template {
  readonly name: string;
  readonly hypervisor: string;
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly sealedAt: string;
  readonly linkedClones: number;
}

/** One event of GET /api/v1/events. */
export type LiveEvent =
  | { type: 'host'; host: string; kind: string; at: string; detail: Record<string, unknown> }
  | { type: 'activity'; seconds: number; counts: Record<string, number> }
  | ({ type: 'job' } & JobEvent)
  | { type: 'vm'; name: string; hypervisor: string; state: string; event: string };
