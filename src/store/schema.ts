/** Row types of the store, as Kysely sees them. Column names are snake_case as in SQL. */
import type { ColumnType, Generated } from 'kysely';

/**
 * The one timestamp type (timestamptz): read as a Date; written as a Date, an ISO 8601 string, or an SQL
 * expression (`sql<Date>\`now()\``). Optional on insert because every such column either has a default or is
 * nullable; `Timestamp<null>` for a nullable column.
 */
type Timestamp<Null extends null = never> = ColumnType<
  Date | Null,
  Date | string | Null | undefined,
  Date | string | Null
>;
/** A timestamp the database sets (DEFAULT now()) and nobody writes. */
type CreatedAt = ColumnType<Date, never, never>;
/** A json/jsonb column: read as T, written as its JSON text. */
type Json<T> = ColumnType<T, string, string>;

export type BuildState = 'discovered' | 'ready' | 'building' | 'built' | 'failed';
export const BUILD_STATES: readonly BuildState[] = ['discovered', 'ready', 'building', 'built', 'failed'];

export interface SitesTable {
  id: Generated<number>;
  name: string;
  description: string;
  build_cap: number;
  created_at: CreatedAt;
}

export interface NetworksTable {
  id: Generated<number>;
  name: string;
  site_id: number;
  cidr: string;
  gateway: string | null;
  dns: Json<string[]>;
  domain: string;
  dynamic_start: string | null;
  dynamic_end: string | null;
  relays: Json<string[]>;
  vlan: number | null;
  lease_seconds: number;
  created_at: CreatedAt;
}

export interface Bmc {
  type: string;
  address: string;
  username?: string;
  /** A shared credentials set (bmc_credentials.name) instead of the host's own password. */
  credentials?: string;
  /** Redfish: do not verify the BMC's TLS certificate (the operator's choice for this host). */
  insecure?: boolean;
  /** Redfish: the PEM CA file that vouches for this BMC's certificate (else the server's default). */
  caFile?: string;
}

export interface ProfilesTable {
  id: Generated<number>;
  name: string;
  os: string;
  arch: string;
  install_tree_url: string;
  kernel_path: string;
  initrd_path: string;
  kickstart_template: string;
  packages: Json<string[]>;
  kernel_args: string;
  root_password_hash: string;
  created_at: CreatedAt;
}

export interface HostsTable {
  id: Generated<number>;
  hostname: string;
  network_id: number | null;
  ip: string | null;
  profile_id: number | null;
  smbios_uuid: string | null;
  bmc: Json<Bmc | null>;
  build_state: BuildState;
  build_token: string | null;
  state_changed_at: Timestamp;
  build_started_at: Timestamp<null>;
  queued_at: Timestamp<null>;
  queue_seen_at: Timestamp<null>;
  build_count: Generated<number>;
  last_seen_ip: string | null;
  /** The host's own BMC password, sealed (bmc/secret-box.ts); never selected for answers. */
  bmc_secret: ColumnType<string | null, string | null | undefined, string | null>;
  /** The BMC's last power reading (bmc/power-poller.ts) and when; power_error: the code when it did not answer. */
  power_state: ColumnType<PowerState | null, PowerState | null | undefined, PowerState | null>;
  power_checked_at: Timestamp<null>;
  power_error: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
}

export type PowerState = 'on' | 'off' | 'unknown';

/** Work one node of a cluster does at a time: who holds it, until when (database time). */
export interface NodeLeasesTable {
  name: string;
  owner: string;
  lease_until: Timestamp;
}

/** Credentials shared by many BMCs (a site's or a vendor's default account). */
export interface BmcCredentialsTable {
  id: Generated<number>;
  name: string;
  username: string;
  /** Sealed (bmc/secret-box.ts). */
  secret: string;
  updated_at: Timestamp;
}

export interface HostMacsTable {
  mac: string;
  host_id: number;
  position: number;
}

export interface HostEventsTable {
  id: Generated<number>;
  host_id: number;
  at: Timestamp;
  kind: string;
  detail: Json<Record<string, unknown>>;
}

export interface UsersTable {
  id: Generated<number>;
  name: string;
  role: 'admin' | 'operator' | 'viewer';
  password_hash: string | null;
  created_at: CreatedAt;
}

export interface ApiTokensTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  token_hash: string;
  scopes: Json<string[]>;
  expires_at: Timestamp<null>;
  last_used_at: Timestamp<null>;
  created_at: CreatedAt;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: Timestamp;
  actor: string;
  action: string;
  target: string;
  result: string;
  detail: Json<Record<string, unknown>>;
}

export type LeaseState = 'bound' | 'released' | 'declined' | 'expired';

export interface LeasesTable {
  ip: string;
  network_id: number;
  mac: string;
  client_id: string | null;
  hostname: string | null;
  state: LeaseState;
  expires_at: Timestamp;
  updated_at: Timestamp;
}

export type HypervisorHealth = 'up' | 'down' | 'unknown';

export interface HypervisorsTable {
  id: Generated<number>;
  name: string;
  uri: string;
  site_id: number;
  host_id: number | null;
  storage_pool: Generated<string>;
  bridge: Generated<string>;
  max_parallel: Generated<number>;
  cpus: number | null;
  memory_mib: ColumnType<string | number | null, number | null, number | null>;
  pool_capacity: ColumnType<string | number | null, number | null, number | null>;
  pool_available: ColumnType<string | number | null, number | null, number | null>;
  domain_type: 'kvm' | 'qemu' | null;
  domain_type_reason: ColumnType<string | null, string | null | undefined, string | null>;
  probed_at: Timestamp<null>;
  health: Generated<HypervisorHealth>;
  last_error: string | null;
  checked_at: Timestamp<null>;
  created_at: CreatedAt;
}

export interface TemplatesTable {
  id: Generated<number>;
  name: string;
  hypervisor_id: number;
  disk_path: string;
  memory_mib: number;
  vcpus: number;
  domain_spec: Json<Record<string, unknown>>;
  operations: Json<string[]>;
  sealed_at: CreatedAt;
}

export type CloneKind = 'linked' | 'full';

export interface VmsTable {
  id: Generated<number>;
  name: string;
  hypervisor_id: number;
  uuid: string;
  memory_mib: number;
  vcpus: number;
  state: Generated<string>;
  template_id: number | null;
  clone_kind: CloneKind | null;
  disk_path: string | null;
  seed_path: string | null;
  macs: Json<string[]>;
  anti_affinity: string | null;
  domain_spec: Json<Record<string, unknown>>;
  network_id: ColumnType<number | null, number | null | undefined, number | null>;
  ip: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'partial' | 'cancelled';

/** One item of a job as stored in jobs.results (and answered by the API: vms/job-model.ts). */
export interface JobItemResult {
  /** The VM of a bulk clone; the host of a site power job. */
  readonly name: string;
  /** Where the item ran: the clone's hypervisor; for a site power job, the host's BMC address. */
  readonly hypervisor: string;
  readonly ok: boolean;
  readonly error?: string;
  /** The error's stable code (KVMF_ERR_…), when it has one. */
  readonly code?: string;
  /** What happened, when there is more to say than ok (a site power-off: "soft", "hard after 120 s", "was off"). */
  readonly detail?: string;
  readonly ms: number;
}

export interface JobsTable {
  id: Generated<number>;
  kind: string;
  state: JobState;
  total: number;
  done: Generated<number>;
  failed: Generated<number>;
  params: Json<Record<string, unknown>>;
  results: Json<JobItemResult[]>;
  actor: Generated<string>;
  created_at: CreatedAt;
  finished_at: Timestamp<null>;
  /** The worker that holds the job and until when (renewed while it works). */
  lease_owner: ColumnType<string | null, string | null | undefined, string | null>;
  lease_until: Timestamp<null>;
  attempts: Generated<number>;
  cancel_requested: Generated<boolean>;
}

export interface NodesTable {
  name: string;
  site_id: number | null;
  roles: Json<string[]>;
  http_address: string | null;
  api_url: string | null;
  version: string;
  detail: Json<Record<string, unknown>>;
  started_at: Timestamp;
  seen_at: Timestamp;
}

export interface Database {
  nodes: NodesTable;
  hypervisors: HypervisorsTable;
  templates: TemplatesTable;
  vms: VmsTable;
  jobs: JobsTable;
  leases: LeasesTable;
  sites: SitesTable;
  networks: NetworksTable;
  profiles: ProfilesTable;
  hosts: HostsTable;
  host_macs: HostMacsTable;
  bmc_credentials: BmcCredentialsTable;
  node_leases: NodeLeasesTable;
  host_events: HostEventsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
}
