/**
 * Versioned schema migrations, in code so the binary carries its schema. They run at start
 * (Kysely's Migrator takes a lock, so several nodes starting on one PostgreSQL do not race).
 * Never edit a released migration: add a new one.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_inventory': {
    async up(db: Kysely<any>) {
      await sql`
        create table sites (
          id serial primary key,
          name text not null unique check (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
          description text not null default '',
          build_cap integer not null default 20 check (build_cap >= 0),
          created_at timestamptz not null default now()
        )`.execute(db);
      // The exclusion constraint is the store's own guard against overlapping networks;
      // the service checks first so users get a clear error naming the other network.
      await sql`
        create table networks (
          id serial primary key,
          name text not null unique check (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
          site_id integer not null references sites(id),
          cidr cidr not null,
          gateway inet,
          dns jsonb not null default '[]',
          domain text not null default '',
          dynamic_start inet,
          dynamic_end inet,
          relays jsonb not null default '[]',
          vlan integer check (vlan between 1 and 4094),
          lease_seconds integer not null default 86400 check (lease_seconds >= 60),
          created_at timestamptz not null default now(),
          exclude using gist (cidr inet_ops with &&)
        )`.execute(db);
      await sql`
        create table profiles (
          id serial primary key,
          name text not null unique check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
          os text not null,
          arch text not null default 'x86_64',
          install_tree_url text not null,
          kernel_path text not null,
          initrd_path text not null,
          kickstart_template text not null,
          packages jsonb not null default '[]',
          kernel_args text not null default '',
          root_password_hash text not null default '',
          created_at timestamptz not null default now()
        )`.execute(db);
      await sql`
        create table hosts (
          id serial primary key,
          hostname text not null unique,
          network_id integer references networks(id),
          ip inet unique,
          profile_id integer references profiles(id),
          smbios_uuid uuid unique,
          bmc jsonb,
          build_state text not null check (build_state in ('discovered','ready','building','built','failed')),
          build_token text unique,
          state_changed_at timestamptz not null default now(),
          created_at timestamptz not null default now()
        )`.execute(db);
      await sql`create index hosts_network_idx on hosts(network_id)`.execute(db);
      await sql`create index hosts_state_idx on hosts(build_state)`.execute(db);
      await sql`
        create table host_macs (
          mac text primary key check (mac ~ '^([0-9a-f]{2}:){5}[0-9a-f]{2}$'),
          host_id integer not null references hosts(id) on delete cascade,
          position integer not null default 0
        )`.execute(db);
      await sql`create index host_macs_host_idx on host_macs(host_id)`.execute(db);
      await sql`
        create table host_events (
          id bigserial primary key,
          host_id integer not null references hosts(id) on delete cascade,
          at timestamptz not null default clock_timestamp(),
          kind text not null,
          detail jsonb not null default '{}'
        )`.execute(db);
      await sql`create index host_events_host_idx on host_events(host_id, at)`.execute(db);
      await sql`
        create table users (
          id serial primary key,
          name text not null unique,
          role text not null check (role in ('admin','operator','viewer')),
          password_hash text,
          created_at timestamptz not null default now()
        )`.execute(db);
      await sql`
        create table api_tokens (
          id serial primary key,
          user_id integer not null references users(id) on delete cascade,
          name text not null,
          token_hash text not null unique,
          scopes jsonb not null default '[]',
          expires_at timestamptz,
          last_used_at timestamptz,
          created_at timestamptz not null default now()
        )`.execute(db);
      await sql`
        create table audit_log (
          id bigserial primary key,
          at timestamptz not null default now(),
          actor text not null,
          action text not null,
          target text not null,
          result text not null,
          detail jsonb not null default '{}'
        )`.execute(db);
    },
  },
  '0002_builds': {
    async up(db: Kysely<any>) {
      // build_token holds the SHA-256 of the current build token; the token itself only travels to the host.
      await sql`alter table hosts add column build_started_at timestamptz`.execute(db);
      await sql`alter table hosts add column queued_at timestamptz`.execute(db);
      await sql`alter table hosts add column queue_seen_at timestamptz`.execute(db);
      await sql`alter table hosts add column build_count integer not null default 0`.execute(db);
      await sql`alter table hosts add column last_seen_ip inet`.execute(db);
      await sql`create index hosts_queue_idx on hosts(queued_at) where queued_at is not null`.execute(db);
    },
  },
  '0003_leases': {
    async up(db: Kysely<any>) {
      // One row per address ever leased. A lease is durable before its ACK leaves the server.
      await sql`
        create table leases (
          ip inet primary key,
          network_id integer not null references networks(id) on delete cascade,
          mac text not null,
          client_id text,
          hostname text,
          state text not null check (state in ('bound', 'released', 'declined', 'expired')),
          expires_at timestamptz not null,
          updated_at timestamptz not null default now()
        )`.execute(db);
      await sql`create index leases_mac_idx on leases(mac)`.execute(db);
      await sql`create index leases_network_idx on leases(network_id)`.execute(db);
    },
  },
  '0004_vms': {
    async up(db: Kysely<any>) {
      // Hypervisors are reached by libvirt URI; capacity is read from libvirt, not typed in.
      await sql`
        create table hypervisors (
          id serial primary key,
          name text not null unique check (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$'),
          uri text not null unique,
          site_id integer not null references sites(id) on delete restrict,
          host_id integer references hosts(id) on delete set null,
          storage_pool text not null default 'default',
          bridge text not null default 'br0',
          max_parallel integer not null default 4 check (max_parallel between 1 and 64),
          cpus integer,
          memory_mib bigint,
          pool_capacity bigint,
          pool_available bigint,
          domain_type text check (domain_type in ('kvm', 'qemu')),
          health text not null default 'unknown' check (health in ('up', 'down', 'unknown')),
          last_error text,
          checked_at timestamptz,
          created_at timestamptz not null default now()
        )`.execute(db);
      await sql`
        create table templates (
          id serial primary key,
          name text not null unique check (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
          hypervisor_id integer not null references hypervisors(id) on delete restrict,
          disk_path text not null,
          memory_mib integer not null,
          vcpus integer not null,
          domain_spec jsonb not null,
          operations jsonb not null default '[]',
          sealed_at timestamptz not null default now()
        )`.execute(db);
      await sql`
        create table vms (
          id serial primary key,
          name text not null unique check (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
          hypervisor_id integer not null references hypervisors(id) on delete restrict,
          uuid uuid not null unique,
          memory_mib integer not null,
          vcpus integer not null,
          state text not null default 'shutoff',
          -- A linked clone's disk reads through the template's: the template cannot go while it exists.
          template_id integer references templates(id) on delete restrict,
          clone_kind text check (clone_kind in ('linked', 'full')),
          disk_path text,
          seed_path text,
          macs jsonb not null default '[]',
          anti_affinity text,
          domain_spec jsonb not null default '{}',
          -- A static address from a kvmfleet network (written into the clone's cloud-init seed).
          network_id integer references networks(id) on delete restrict,
          ip inet unique,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db);
      await sql`create index vms_hypervisor_idx on vms(hypervisor_id)`.execute(db);
      await sql`
        create table jobs (
          id serial primary key,
          kind text not null,
          state text not null check (state in ('queued', 'running', 'succeeded', 'failed', 'partial')),
          total integer not null,
          done integer not null default 0,
          failed integer not null default 0,
          params jsonb not null default '{}',
          results jsonb not null default '[]',
          actor text not null default 'api',
          created_at timestamptz not null default now(),
          finished_at timestamptz
        )`.execute(db);
    },
  },
  '0005_nodes': {
    async up(db: Kysely<any>) {
      // kvmfleet processes announce themselves here (heartbeat): load-balancer configurations and
      // the console read which boot servers are alive.
      await sql`
        create table nodes (
          name text primary key check (name ~ '^[A-Za-z0-9._-]{1,64}$'),
          site_id integer references sites(id) on delete set null,
          roles jsonb not null default '[]',
          http_address text,
          api_url text,
          version text not null,
          -- What the node reports of itself (e.g. scripts answered from its cache while the store was down).
          detail jsonb not null default '{}',
          started_at timestamptz not null default now(),
          seen_at timestamptz not null default now()
        )`.execute(db);
    },
  },
  '0006_hypervisor_probe': {
    async up(db: Kysely<any>) {
      // Why the domain type is what it is (what the KVM probe saw), and when it was decided.
      await sql`alter table hypervisors add column domain_type_reason text`.execute(db);
      await sql`alter table hypervisors add column probed_at timestamptz`.execute(db);
    },
  },
  '0007_bmc_credentials': {
    async up(db: Kysely<any>) {
      // BMC passwords, sealed (bmc/secret-box.ts: AES-256-GCM, key id inside the text): a host's own in
      // hosts.bmc_secret, or a credentials set shared by many hosts, named in hosts.bmc->>'credentials'.
      await sql`
        create table bmc_credentials (
          id serial primary key,
          name text not null unique check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
          username text not null,
          secret text not null,
          updated_at timestamptz not null default now()
        )`.execute(db);
      await sql`alter table hosts add column bmc_secret text`.execute(db);
    },
  },
  '0009_job_leases': {
    async up(db: Kysely<any>) {
      // A running job is leased by one worker, which renews the lease while it works; a job whose
      // lease ran out (its worker died) is claimed again and resumed. Times are the database's.
      await sql`alter table jobs add column lease_owner text`.execute(db);
      await sql`alter table jobs add column lease_until timestamptz`.execute(db);
      await sql`alter table jobs add column attempts integer not null default 0`.execute(db);
      await sql`alter table jobs add column cancel_requested boolean not null default false`.execute(db);
      await sql`alter table jobs drop constraint jobs_state_check`.execute(db);
      await sql`alter table jobs add constraint jobs_state_check check (state in ('queued', 'running', 'succeeded', 'failed', 'partial', 'cancelled'))`.execute(
        db,
      );
    },
  },
  '0010_retention': {
    async up(db: Kysely<any>) {
      // The retention sweep (store/retention.ts) finds old rows by age, and a host's later event of
      // the same kind (the latest of each kind is kept), without scanning the tables.
      await sql`create index host_events_at_idx on host_events(at)`.execute(db);
      await sql`create index host_events_kind_idx on host_events(host_id, kind, id)`.execute(db);
      await sql`create index audit_log_at_idx on audit_log(at)`.execute(db);
      await sql`create index jobs_finished_idx on jobs(finished_at) where finished_at is not null`.execute(db);
    },
  },
  '0011_host_power': {
    async up(db: Kysely<any>) {
      // What the power poller (bmc/power-poller.ts) last read from each host's BMC, and when: 'unknown'
      // with the error's code when the BMC did not answer. Hosts are picked by the oldest reading.
      await sql`alter table hosts add column power_state text check (power_state in ('on', 'off', 'unknown'))`.execute(
        db,
      );
      await sql`alter table hosts add column power_checked_at timestamptz`.execute(db);
      await sql`alter table hosts add column power_error text`.execute(db);
      await sql`create index hosts_power_checked_idx on hosts(power_checked_at nulls first) where jsonb_typeof(bmc) = 'object'`.execute(
        db,
      );
      // Work that one node of a cluster does at a time (the power poller): a lease renewed in database time.
      await sql`
        create table node_leases (
          name text primary key check (name ~ '^[a-z0-9-]{1,63}$'),
          owner text not null,
          lease_until timestamptz not null
        )`.execute(db);
    },
  },
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
