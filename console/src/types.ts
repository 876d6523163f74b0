/** What the kvmfleet API answers, as the console uses it (the OpenAPI document at /openapi.json is the reference). */
export type BuildState = 'discovered' | 'ready' | 'building' | 'built' | 'failed';
export type Permission = 'read' | 'write' | 'admin';

export interface WhoAmI {
  readonly user: string | null;
  readonly role: string | null;
  readonly permissions: Permission[];
  /** No user exists yet and the API listens on loopback only: everything is allowed. */
  readonly open?: boolean;
}

export interface Site {
  readonly name: string;
  readonly description: string;
  readonly buildCap: number;
}

export interface SiteProgress {
  readonly site: string;
  readonly cap: number;
  readonly hosts: number;
  readonly counts: Record<BuildState | 'queued', number>;
}

export interface Network {
  readonly name: string;
  readonly site: string;
  readonly cidr: string;
}

export interface Profile {
  readonly name: string;
  readonly os: string;
}

export interface Host {
  readonly hostname: string;
  readonly macs: string[];
  readonly ip: string | null;
  readonly network: string | null;
  readonly site: string | null;
  readonly profile: string | null;
  readonly buildState: BuildState;
  readonly stateChangedAt: string;
}

export interface TimelineEntry {
  readonly at: string;
  readonly kind: string;
  readonly detail: Record<string, unknown>;
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

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'partial';

export interface JobItemResult {
  readonly name: string;
  readonly hypervisor: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly ms: number;
}

export interface Job {
  readonly id: number;
  readonly kind: string;
  readonly state: JobState;
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly results: JobItemResult[];
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly warning?: string;
}

export interface AuditEntry {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly result: string;
}

/** One event of GET /api/v1/events. */
export type LiveEvent =
  | { type: 'host'; host: string; kind: string; at: string; detail: Record<string, unknown> }
  | { type: 'activity'; seconds: number; counts: Record<string, number> }
  | { type: 'job'; job: number; state: JobState; done: number; failed: number; total: number; item?: JobItemResult }
  | { type: 'vm'; name: string; hypervisor: string; state: string; event: string };
