/**
 * `kvmfleet serve`: open the store, start the roles asked for, stop them cleanly on SIGINT/SIGTERM.
 * Each role is a value: `start<Role>()` returns what the others need and its `stop`, which goes on a stack; stopping
 * runs the stack newest first (heartbeat, api, vms, http, dhcp, tftp, sweeps, cache, store), so a role is stopped
 * before what it runs on. A role that fails half-way stops its own parts; serve then stops those started before it.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/app.ts';
import { bmcDepsFor } from './bmc/power.ts';
import type { PlacementPolicy } from './vms/placement.ts';
import { DEFAULT_BUILD_POLICY, startBuildTimeoutSweep, type BuildPolicy } from './fleet/builds.ts';
import { DEFAULT_RETENTION, startRetentionSweep, type RetentionPolicy } from './store/retention.ts';
import type { Periodic } from './store/periodic.ts';
import { buildBootHttp } from './boot/http.ts';
import { registerFirmwareRoutes, type FirmwareServed } from './boot/firmware-http.ts';
import { hostFallbackHook } from './boot/host-fallback.ts';
import { DiscoveryLimiter } from './boot/rate-limit.ts';
import { KickstartTemplates } from './boot/kickstart.ts';
import { MirrorCache } from './boot/mirror.ts';
import { BootService } from './boot/service.ts';
import { TimelineWriter } from './fleet/timeline-writer.ts';
import { TokenBatcher } from './boot/token-batch.ts';
import type { Role } from './cluster/roles.ts';
import { DEBIAN_IPXE_FILES, FileStore } from './protocols/tftp/files.ts';
import { TftpServer, type TransferEvent } from './protocols/tftp/server.ts';
import { openStore, type Store } from './store/open.ts';
import { LeaseWriter } from './store/lease-writer.ts';
import { DhcpService } from './boot/dhcp-service.ts';
import { DhcpServer, type DhcpHandler } from './protocols/dhcp4/server.ts';
import { rateLimitedErrorLog } from './boot/error-log.ts';
import { BootSummary, createLogger, dhcpReplyIsOk, dhcpTypeName, loggerOptions, tftpKind } from './logging/index.ts';
import { clientMac, messageType } from './protocols/dhcp4/packet.ts';
import { LibvirtPool } from './protocols/libvirt/pool.ts';
import { startHeartbeat } from './cluster/nodes.ts';
import { countUsers, createToken, createUser } from './auth/accounts.ts';
import { hostname } from 'node:os';
import type { Server as HttpsServer } from 'node:https';
import { readTls, reloadOnSighup, type TlsFiles } from './api/tls.ts';
import { JobRunner } from './vms/jobs.ts';
import { startPowerGauge, startPowerWork } from './cluster/power-work.ts';
import { EventHub } from './api/events.ts';
import { HostCache } from './boot/host-cache.ts';
import { FAILOVER_DEFAULTS, FailoverLink, FailoverMachine, type FailoverConfig } from './boot/dhcp-failover.ts';
import { loadFailoverKey } from './boot/failover-auth.ts';
import { VmService } from './vms/vm-service.ts';
import { Metrics, type Sample } from './metrics.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  /** tls: serve the API over HTTPS; insecureHttp: allow plain HTTP beyond loopback (a TLS proxy in front). */
  readonly api: { host: string; port: number; tls?: TlsFiles | undefined; insecureHttp?: boolean | undefined };
  readonly http: {
    host: string;
    port: number;
    treesDir?: string | undefined;
    baseUrl?: string | undefined;
    trustProxy?: readonly string[];
    mirrors?: ReadonlyMap<string, string>;
  };
  readonly tftp: { host: string; port: number; root?: string | undefined; timeoutMs?: number | undefined };
  readonly dhcp?: {
    serverId?: string | undefined;
    mode: 'full' | 'proxy';
    nextServer?: string | undefined;
    bootBaseUrl?: string | undefined;
    port?: number;
    /** Seconds a declined address sits out (default 86400, as Kea). */
    declineProbationSeconds?: number | undefined;
    /** Distributed topology: serve only these networks. */
    networks?: readonly string[] | undefined;
    /** One of a failover pair (shared store): role, the partner's address, RFC 3074 split and timers. */
    failover?:
      | (Partial<FailoverConfig> & {
          role: 'primary' | 'secondary';
          peer: string;
          port?: number;
          keyFile?: string | undefined;
        })
      | undefined;
  };
  readonly policy?: Partial<BuildPolicy>;
  /** Days kept of host events, audit entries and finished jobs (0: for ever). */
  readonly retention?: Partial<RetentionPolicy>;
  /** How often the build-timeout and retention sweeps run (tests shorten them). */
  readonly sweepIntervalsMs?: { buildTimeout?: number; retention?: number };
  /** Where VMs go: vCPU overcommit and the memory kept for each hypervisor. */
  readonly placement?: PlacementPolicy;
  readonly roles: readonly Role[];
  readonly logLevel: string;
  /** This process in the node registry: its name (default: host name and boot HTTP port) and site. */
  readonly node?: { name?: string | undefined; site?: string | undefined; advertiseHttp?: string | undefined };
}

export interface Running {
  readonly store: Store;
  readonly boot: BootService;
  readonly metrics: Metrics;
  /** What each role listens on, e.g. { api: "http://127.0.0.1:8080", tftp: "udp://0.0.0.0:69" }. */
  readonly endpoints: Partial<Record<Role, string>>;
  stop(): Promise<void>;
}

const urlOf = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

function boundPort(app: FastifyInstance, fallback: number): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : fallback;
}

type Stop = () => Promise<void> | void;

/** What has been started, stopped newest first: a role stops before what it was started on. */
class StopStack {
  readonly #stops: Stop[] = [];

  push(stop: Stop): void {
    this.#stops.push(stop);
  }

  /** Runs every stop, even after one fails (then throws the first failure once all ran). */
  async stop(): Promise<void> {
    let failure: { error: unknown } | undefined;
    for (let stop = this.#stops.pop(); stop; stop = this.#stops.pop()) {
      try {
        await stop();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}

/** Starts the parts of one role on a stack of its own: a part that fails stops those started before it. */
async function starting<T extends object>(build: (parts: StopStack) => Promise<T>): Promise<T & { stop: Stop }> {
  const parts = new StopStack();
  try {
    return { ...(await build(parts)), stop: () => parts.stop() };
  } catch (error) {
    await parts.stop().catch(() => {});
    throw error;
  }
}

/** What every role is started with. */
interface Context {
  readonly options: ServeOptions;
  readonly store: Store;
  readonly boot: BootService;
  readonly metrics: Metrics;
  readonly discovery: DiscoveryLimiter;
  /** Group commit of every role's timeline events. */
  readonly timeline: TimelineWriter;
  /** A path under the data directory, absolute. */
  readonly local: (name: string) => string;
}

export async function serve(options: ServeOptions): Promise<Running> {
  const store = await openStore({ databaseUrl: options.databaseUrl, dataDir: options.dataDir });
  const stack = new StopStack();
  stack.push(() => store.close());
  const metrics = new Metrics();
  const endpoints: Partial<Record<Role, string>> = {};
  const has = (role: Role) => options.roles.includes(role);
  try {
    // Absolute, so that roles (and @fastify/static, which insists) do not depend on the working directory.
    const local = (name: string) => resolve(options.dataDir === 'memory://' ? '.' : options.dataDir, name);
    // A boot server keeps answering known machines while its store is briefly unreachable. The
    // embedded store is in this process and cannot be: no cache (and no periodic rescan) for it.
    const cache = has('http') && store.kind === 'postgresql' ? new HostCache(store.db) : undefined;
    if (cache) {
      await cache.start();
      stack.push(() => cache.stop());
    }
    // One bound for what unknown MACs may record, by DHCP and by boot HTTP alike.
    const discovery = new DiscoveryLimiter();
    // Group commit of the hosts' timelines for every role; drained after the roles stop, before the store closes.
    const timeline = new TimelineWriter(store.db);
    stack.push(() => timeline.drain());
    const boot = new BootService({
      db: store.db,
      templates: new KickstartTemplates(local(join('templates', 'kickstart'))),
      policy: { ...DEFAULT_BUILD_POLICY, ...options.policy },
      discovery,
      timeline,
      // The embedded store is one session: its token lookup can be planned once.
      tokens: new TokenBatcher(store.db, { prepared: store.kind === 'embedded' }),
      ...(cache ? { cache } : {}),
    });
    const context: Context = { options, store, boot, metrics, discovery, timeline, local };
    stack.push(startSweeps(context));
    const tftp = has('tftp') ? await startTftp(context) : undefined;
    if (tftp) {
      stack.push(tftp.stop);
      endpoints.tftp = tftp.endpoint;
    }
    const dhcp = has('dhcp') ? await startDhcp(context) : undefined;
    if (dhcp) {
      stack.push(dhcp.stop);
      endpoints.dhcp = dhcp.endpoint;
    }
    if (tftp) metrics.add(() => tftpSamples(tftp.server));
    metrics.add(() => [
      {
        name: 'kvmfleet_discovery_dropped_total',
        help: 'discovered hosts and their events not recorded (rate limits; DHCP and boot HTTP)',
        type: 'counter',
        values: [
          { labels: { what: 'host' }, value: discovery.dropped.hosts },
          { labels: { what: 'event' }, value: discovery.dropped.events },
        ],
      },
    ]);
    metrics.add(() => [
      {
        name: 'kvmfleet_timeline_events_total',
        help: 'host timeline events committed, in group commits (fleet/timeline-writer.ts)',
        type: 'counter',
        values: [{ value: timeline.stats.events }],
      },
      {
        name: 'kvmfleet_timeline_commits_total',
        help: 'statements that committed host timeline events (a batch, or one row of a failed batch)',
        type: 'counter',
        values: [{ value: timeline.stats.commits }],
      },
      {
        name: 'kvmfleet_timeline_refused_total',
        help: 'host timeline events not stored: refused before the batch, or failing alone after it',
        type: 'counter',
        values: [
          { labels: { why: 'invalid' }, value: timeline.stats.invalid },
          { labels: { why: 'store' }, value: timeline.stats.failedRows },
        ],
      },
      {
        name: 'kvmfleet_boot_token_checks_total',
        help: 'build-token checks (Kickstarts, boot files) and the batched queries that answered them',
        type: 'counter',
        values: [
          { labels: { what: 'check' }, value: boot.tokens.stats.lookups },
          { labels: { what: 'query' }, value: boot.tokens.stats.queries },
          { labels: { what: 'malformed' }, value: boot.tokens.stats.refusedShape },
        ],
      },
    ]);
    const http = has('http') ? await startHttp(context) : undefined;
    if (http) {
      stack.push(http.stop);
      endpoints.http = http.endpoint;
    }
    const vms = has('api') || has('worker') ? startVms(context) : undefined;
    if (vms) stack.push(vms.stop);
    if (has('api')) {
      const api = await startApi(context, { vms: vms!, dhcp, httpEndpoint: endpoints.http });
      stack.push(api.stop);
      endpoints.api = api.endpoint;
    }
    stack.push(announce(context, endpoints, { cache, dhcp }).stop);
    let stopping: Promise<void> | undefined;
    return {
      store,
      boot,
      metrics,
      endpoints,
      stop() {
        stopping ??= stack.stop();
        return stopping;
      },
    };
  } catch (error) {
    await stack.stop().catch(() => {});
    throw error;
  }
}

/** Store upkeep on every node: both sweeps are idempotent across nodes (store/retention.ts, fleet/builds.ts). */
function startSweeps({ options, store, boot }: Context): Stop {
  const sweeps: Periodic[] = [
    startBuildTimeoutSweep(
      store.db,
      boot.policy,
      rateLimitedErrorLog('build timeout sweep', 1),
      options.sweepIntervalsMs?.buildTimeout,
    ),
    startRetentionSweep(
      store.db,
      { ...DEFAULT_RETENTION, ...options.retention },
      rateLimitedErrorLog('retention sweep', 1),
      options.sweepIntervalsMs?.retention,
    ),
  ];
  return async () => {
    await Promise.all(sweeps.map((sweep) => sweep.stop()));
  };
}

/** A logger for a role that is not a Fastify app, written as the others are (JSON, or text on a terminal). */
function roleLogger(options: ServeOptions, role: string) {
  return createLogger({ level: options.logLevel }).child({ role });
}

function startTftp({ options, store, timeline, local }: Context) {
  return starting(async (parts) => {
    const root = options.tftp.root ?? local('tftp');
    mkdirSync(root, { recursive: true });
    // Each transfer at debug, their counts at info once a minute: a storm does not bury the rest.
    const summary = new BootSummary({ label: 'tftp', noun: 'transfer', log: roleLogger(options, 'tftp') });
    parts.push(() => summary.stop());
    const builtinNames = Object.keys(DEBIAN_IPXE_FILES);
    const server = new TftpServer({
      files: new FileStore({ root, builtins: DEBIAN_IPXE_FILES }),
      host: options.tftp.host,
      port: options.tftp.port,
      ...(options.tftp.timeoutMs ? { limits: { defaultTimeoutMs: options.tftp.timeoutMs } } : {}),
      onTransfer: (event) => {
        summary.record({
          kind: tftpKind(event.filename, builtinNames),
          status: event.outcome,
          msg: 'tftp transfer finished',
          fields: {
            client: event.client,
            filename: event.filename,
            bytes: event.bytes,
            ...(event.detail ? { detail: event.detail } : {}),
          },
        });
        void recordTftpEvent(store, timeline, event).catch(() => {});
      },
    });
    const bound = await server.listen().catch((error: NodeJS.ErrnoException) => {
      throw new Error(
        `tftp cannot listen on ${options.tftp.host}:${options.tftp.port} (${error.code ?? error.message})${error.code === 'EACCES' ? ': port 69 needs root or CAP_NET_BIND_SERVICE' : ''}`,
      );
    });
    parts.push(() => server.close());
    return { server, endpoint: `udp://${bound.address}:${bound.port}` };
  });
}

interface DhcpRole {
  readonly stop: Stop;
  readonly endpoint: string;
  readonly failover: FailoverMachine | undefined;
  /** What the API's /api/v1/dhcp/stats answers. */
  stats(): Record<string, unknown>;
}

function startDhcp({ options, store, metrics, discovery, timeline }: Context): Promise<DhcpRole> {
  return starting(async (parts) => {
    const config = options.dhcp;
    if (!config?.serverId)
      throw new Error("the dhcp role needs --dhcp-server-id: this server's address on the boot network");
    if (config.failover && store.kind !== 'postgresql')
      throw new Error(
        'a DHCP failover pair shares its leases through PostgreSQL: give both servers the same --database-url',
      );
    const failover = config.failover ? await startFailover(config.serverId, config.failover, parts) : undefined;
    if (failover) {
      const link = failover.link;
      metrics.add(() => [
        {
          name: 'kvmfleet_dhcp_failover_beats_refused_total',
          help: 'failover heartbeats dropped: malformed, wrong MAC, stale, replayed',
          type: 'counter',
          values: Object.entries(link.refused).map(([reason, value]) => ({ labels: { reason }, value })),
        },
      ]);
    }
    const writer = new LeaseWriter(store.db);
    parts.push(() => writer.drain());
    const dhcpErrors = rateLimitedErrorLog('dhcp');
    const service = new DhcpService({
      onError: dhcpErrors,
      failover: failover?.machine,
      discovery,
      networks: config.networks,
      db: store.db,
      writer,
      timeline,
      serverId: config.serverId,
      mode: config.mode,
      nextServer: config.nextServer,
      declineProbationMs:
        config.declineProbationSeconds === undefined ? undefined : config.declineProbationSeconds * 1000,
      bootBaseUrl: config.bootBaseUrl ?? options.http.baseUrl ?? urlOf(config.serverId, options.http.port),
    });
    await service.start();
    parts.push(() => service.stop());
    // Each exchange at debug, their counts at info once a minute.
    const summary = new BootSummary({
      label: 'dhcp',
      noun: 'packet',
      log: roleLogger(options, 'dhcp'),
      isOk: dhcpReplyIsOk,
    });
    parts.push(() => summary.stop());
    const answer: DhcpHandler = async (request, context) => {
      const reply = await service.handle(request, context);
      summary.record({
        kind: dhcpTypeName(messageType(request)),
        status: reply ? dhcpTypeName(messageType(reply.packet)) : 'no reply',
        msg: 'dhcp packet',
        fields: { mac: clientMac(request), from: `${context.from.address}:${context.from.port}` },
      });
      return reply;
    };
    const server = new DhcpServer(answer, {
      ports: config.mode === 'proxy' ? [config.port ?? 67, 4011] : [config.port ?? 67],
      onError: dhcpErrors,
    });
    await server.listen().catch((error: NodeJS.ErrnoException) => {
      throw new Error(
        `dhcp cannot listen (${error.code ?? error.message})${error.code === 'EACCES' ? ': port 67 needs root or CAP_NET_BIND_SERVICE' : ''}`,
      );
    });
    parts.push(() => server.close());
    metrics.add(() => dhcpSamples(server, service, writer));
    const machine = failover?.machine;
    return {
      endpoint: `udp://0.0.0.0:${config.port ?? 67} (${config.mode}, server id ${config.serverId}${config.failover ? `, failover ${config.failover.role} with ${config.failover.peer}` : ''})`,
      failover: machine,
      stats: () => ({
        ...server.stats,
        policy: service.stats,
        pools: service.poolStats(),
        leaseWrites: writer.stats,
        ...(machine
          ? {
              failover: {
                role: machine.config.role,
                state: machine.state,
                partnerState: machine.partnerState ?? null,
                ...machine.counters,
              },
            }
          : {}),
      }),
    };
  });
}

/** The failover state machine and its authenticated heartbeat link to the partner (boot/dhcp-failover.ts). */
async function startFailover(
  serverId: string,
  config: NonNullable<NonNullable<ServeOptions['dhcp']>['failover']>,
  parts: StopStack,
): Promise<{ machine: FailoverMachine; link: FailoverLink }> {
  const { role, peer, port, keyFile, ...timers } = config;
  // Heartbeats are authenticated: a pair without a shared key could be told anything by anyone on the segment.
  if (!keyFile)
    throw new Error(
      'a DHCP failover pair needs --dhcp-failover-key-file: a file with the same secret on both servers (e.g. openssl rand -hex 32)',
    );
  const key = loadFailoverKey(keyFile);
  const machine = new FailoverMachine(
    {
      ...FAILOVER_DEFAULTS,
      ...Object.fromEntries(Object.entries(timers).filter(([, v]) => v !== undefined)),
      role,
    },
    Date.now(),
  );
  const link = new FailoverLink(
    machine,
    { address: serverId, port: port ?? 647 },
    { address: peer, port: port ?? 647 },
    key,
  );
  await link.start();
  parts.push(() => link.stop());
  return { machine, link };
}

function startHttp({ options, store, boot, timeline, local }: Context) {
  return starting(async (parts) => {
    const treesDir = options.http.treesDir ? resolve(options.http.treesDir) : local('trees');
    mkdirSync(treesDir, { recursive: true });
    const mirrors = options.http.mirrors?.size
      ? new MirrorCache(local('mirror-cache'), options.http.mirrors)
      : undefined;
    const http = await buildBootHttp({
      store,
      boot,
      treesDir,
      mirrors,
      baseUrl: options.http.baseUrl,
      logger: loggerOptions({ level: options.logLevel }),
      trustProxy: options.http.trustProxy ?? [],
    });
    parts.push(() => http.close());
    // /ipxe.efi for UEFI HTTP boot, the URL the DHCP role offers; each download on the client's timeline.
    await registerFirmwareRoutes(http, {
      onServed: (event) => void recordFirmwareEvent(store, timeline, event).catch(() => {}),
    });
    http.addHook('onRequest', hostFallbackHook(options.http.baseUrl)); // no Host header: never a broken URL in a script
    await http.listen({ host: options.http.host, port: options.http.port });
    return { endpoint: urlOf(options.http.host, boundPort(http, options.http.port)) };
  });
}

interface VmsRole {
  readonly stop: Stop;
  readonly libvirt: LibvirtPool;
  readonly service: VmService;
  readonly jobs: JobRunner;
}

/** VMs for the api and worker roles: one libvirt connection per hypervisor for this process, opened on first use. */
function startVms({ options, store, boot }: Context): VmsRole {
  const libvirt = new LibvirtPool();
  const service = new VmService(store.db, libvirt, options.placement);
  // Jobs are queued in the store by any api node and run by worker nodes.
  const jobs = new JobRunner(store.db, service, { work: options.roles.includes('worker') });
  // A worker's BMC work: site power jobs, and the power poller (one node of the cluster at a time: its lease).
  const power = options.roles.includes('worker')
    ? startPowerWork(store.db, jobs, bmcDepsFor(options.dataDir), boot.policy, {
        poller: { onError: rateLimitedErrorLog('power poller', 1) },
      })
    : undefined;
  return {
    libvirt,
    service,
    jobs,
    async stop() {
      jobs.stop();
      await power?.stop();
      await libvirt.close();
    },
  };
}

function startApi(
  { options, store, boot, metrics }: Context,
  roles: { vms: VmsRole; dhcp: DhcpRole | undefined; httpEndpoint: string | undefined },
) {
  return starting(async (parts) => {
    const exposed = !isLoopback(options.api.host);
    // Beyond loopback, passwords and tokens would otherwise cross the network in clear.
    if (exposed && !options.api.tls && !options.api.insecureHttp) {
      throw new Error(
        `the API would listen on ${options.api.host} without TLS, so passwords and tokens would cross the network in clear: give --tls-cert FILE --tls-key FILE, or --insecure-http if a TLS-terminating proxy is in front`,
      );
    }
    if (exposed) await requireAdmin(store);
    const tls = options.api.tls ? readTls(options.api.tls) : undefined;
    const { vms, dhcp, httpEndpoint } = roles;
    const events = new EventHub(store.db, { jobs: vms.jobs, vms: vms.service });
    await events.start();
    parts.push(() => events.stop());
    const powerGauge = startPowerGauge(store.db, metrics, rateLimitedErrorLog('power gauge', 1));
    parts.push(() => powerGauge.stop());
    const bootBaseUrl =
      options.http.baseUrl ??
      urlOf(options.http.host === '0.0.0.0' ? '127.0.0.1' : options.http.host, options.http.port);
    const api = await buildApi({
      store,
      boot,
      bmc: bmcDepsFor(options.dataDir),
      metrics,
      authAlwaysRequired: exposed,
      events,
      vms: { db: store.db, pool: vms.libvirt, vms: vms.service, jobs: vms.jobs },
      dhcpStats: dhcp?.stats,
      bootBaseUrl: httpEndpoint && !options.http.baseUrl ? httpEndpoint.replace('0.0.0.0', '127.0.0.1') : bootBaseUrl,
      logger: loggerOptions({ level: options.logLevel }),
      https: tls,
    });
    parts.push(() => api.close());
    await api.listen({ host: options.api.host, port: options.api.port });
    if (options.api.tls) {
      const log = api.log;
      reloadOnSighup(api.server as unknown as HttpsServer, options.api.tls, (message) => log.warn(message));
    }
    return {
      endpoint: urlOf(options.api.host, boundPort(api, options.api.port)).replace(/^http:/, tls ? 'https:' : 'http:'),
    };
  });
}

/** Announce this process (roles, site, where its boot HTTP role is reached) for load balancers and the console. */
function announce(
  { options, store }: Context,
  endpoints: Partial<Record<Role, string>>,
  { cache, dhcp }: { cache: HostCache | undefined; dhcp: DhcpRole | undefined },
): { stop: Stop } {
  const httpPort = endpoints.http ? Number(/:(\d+)$/.exec(endpoints.http)?.[1]) : undefined;
  const advertised =
    options.node?.advertiseHttp ??
    (endpoints.http && options.http.host !== '0.0.0.0'
      ? `${options.http.host}:${httpPort}`
      : httpPort
        ? `${hostname()}:${httpPort}`
        : undefined);
  const name =
    options.node?.name ??
    `${hostname()}-${httpPort ?? endpoints.api?.split(':').at(-1) ?? process.pid}`
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64);
  return startHeartbeat(store.db, {
    name,
    site: options.node?.site,
    roles: options.roles,
    httpAddress: advertised,
    apiUrl: endpoints.api,
    detail: () => ({
      ...(cache ? { cache: { ...cache.stats } } : {}),
      ...(options.dhcp?.networks ? { networks: options.dhcp.networks } : {}),
      ...(dhcp?.failover ? { failover: { role: dhcp.failover.config.role, state: dhcp.failover.state } } : {}),
    }),
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * An API reachable from the network must not be open: start only if a user exists, or create the
 * first admin from KVMFLEET_BOOTSTRAP_ADMIN_TOKEN (automation; the token is the admin's first token).
 */
async function requireAdmin(store: Store): Promise<void> {
  if ((await countUsers(store.db)) > 0) return;
  const token = process.env.KVMFLEET_BOOTSTRAP_ADMIN_TOKEN;
  if (!token) {
    throw new Error(
      'the API would listen beyond loopback with no user to authenticate: create an admin first (run `kvmfleet serve` on loopback and `kvmfleet user add admin --role admin`), or set KVMFLEET_BOOTSTRAP_ADMIN_TOKEN=kvmf_… for the first admin',
    );
  }
  await createUser(store.db, { name: 'admin', role: 'admin' });
  await createToken(store.db, { user: 'admin', name: 'bootstrap' }, token);
}

function dhcpSamples(server: DhcpServer, service: DhcpService, writer: LeaseWriter): Sample[] {
  const pools = service.poolStats();
  return [
    {
      name: 'kvmfleet_dhcp_received_total',
      help: 'DHCP messages received, by type',
      type: 'counter',
      values: Object.entries(server.stats.received).map(([type, value]) => ({ labels: { type }, value })),
    },
    {
      name: 'kvmfleet_dhcp_sent_total',
      help: 'DHCP messages sent, by type',
      type: 'counter',
      values: Object.entries(server.stats.sent).map(([type, value]) => ({ labels: { type }, value })),
    },
    {
      name: 'kvmfleet_dhcp_malformed_total',
      help: 'datagrams that did not decode',
      type: 'counter',
      values: [{ value: server.stats.malformed }],
    },
    {
      name: 'kvmfleet_dhcp_dropped_total',
      help: 'requests not answered',
      type: 'counter',
      values: [{ value: server.stats.dropped }],
    },
    {
      name: 'kvmfleet_dhcp_pool_exhausted_total',
      help: 'requests refused for want of a free address',
      type: 'counter',
      values: [{ value: service.stats.poolExhausted }],
    },
    {
      name: 'kvmfleet_dhcp_lease_commits_total',
      help: 'group commits of leases',
      type: 'counter',
      values: [{ value: writer.stats.commits }],
    },
    {
      name: 'kvmfleet_dhcp_lease_writes_refused_total',
      help: "lease writes the store refused because the address is another client's",
      type: 'counter',
      values: [{ value: writer.stats.refused }],
    },
    {
      name: 'kvmfleet_dhcp_lease_write_errors_total',
      help: 'lease records not stored (invalid, or failed alone after their batch failed)',
      type: 'counter',
      values: [
        { labels: { reason: 'invalid' }, value: writer.stats.invalid },
        { labels: { reason: 'store' }, value: writer.stats.failedRows },
      ],
    },
    {
      name: 'kvmfleet_dhcp_relay_refused_total',
      help: 'relayed packets dropped: source not a relay of the network',
      type: 'counter',
      values: [{ value: service.stats.relayRefused }],
    },
    ...(['size', 'bound', 'offered', 'declined', 'free'] as const).map((field) => ({
      name: `kvmfleet_dhcp_pool_${field}`,
      help: `dynamic pool addresses: ${field}`,
      type: 'gauge' as const,
      values: pools.map((p) => ({ labels: { network: p.network }, value: p[field] })),
    })),
    {
      name: 'kvmfleet_dhcp_pool_entries',
      help: 'what each dynamic pool keeps in memory: address holds and clients remembered (bounded)',
      type: 'gauge',
      values: pools.map((p) => ({ labels: { network: p.network }, value: p.entries })),
    },
  ];
}

function tftpSamples(tftp: TftpServer): Sample[] {
  const s = tftp.stats;
  return [
    {
      name: 'kvmfleet_tftp_transfers_total',
      help: 'TFTP transfers by outcome',
      type: 'counter',
      values: [
        { labels: { outcome: 'completed' }, value: s.completed },
        { labels: { outcome: 'failed' }, value: s.failed },
        { labels: { outcome: 'refused' }, value: s.refused },
      ],
    },
    { name: 'kvmfleet_tftp_active', help: 'TFTP transfers in progress', type: 'gauge', values: [{ value: s.active }] },
    {
      name: 'kvmfleet_tftp_malformed_total',
      help: 'datagrams that did not decode',
      type: 'counter',
      values: [{ value: s.malformed }],
    },
    {
      name: 'kvmfleet_tftp_bytes_sent_total',
      help: 'file bytes sent',
      type: 'counter',
      values: [{ value: s.bytesSent }],
    },
    {
      name: 'kvmfleet_tftp_unconfirmed',
      help: 'TFTP transfers whose client has acknowledged nothing yet',
      type: 'gauge',
      values: [{ value: tftp.unconfirmed() }],
    },
    {
      name: 'kvmfleet_tftp_evicted_total',
      help: 'unconfirmed transfers that gave their slot to a newer request',
      type: 'counter',
      values: [{ value: s.evicted }],
    },
    {
      name: 'kvmfleet_tftp_busy_total',
      help: 'requests refused at a transfer limit',
      type: 'counter',
      values: [
        { labels: { limit: 'per-source' }, value: s.busyPerSource },
        { labels: { limit: 'total' }, value: s.busyTotal },
      ],
    },
    {
      name: 'kvmfleet_tftp_memory_bytes',
      help: 'bytes the TFTP role holds in memory',
      type: 'gauge',
      values: Object.entries(tftp.memory()).map(([kind, value]) => ({ labels: { kind }, value })),
    },
    {
      name: 'kvmfleet_tftp_workers',
      help: 'TFTP transfer worker threads ready',
      type: 'gauge',
      values: [{ value: tftp.workers().ready }],
    },
    {
      name: 'kvmfleet_tftp_worker_restarts_total',
      help: 'TFTP transfer worker threads that died (their transfers ended as closed) and were started again',
      type: 'counter',
      values: [{ value: tftp.workers().crashes }],
    },
  ];
}

/** The host that has this address (its own, or the one it was last seen at), for a download's timeline event. */
async function hostIdAt(store: Store, ip: string): Promise<number | undefined> {
  const host = await store.db
    .selectFrom('hosts')
    .select('id')
    .where((eb) => eb.or([eb('ip', '=', ip), eb('last_seen_ip', '=', ip)]))
    .executeTakeFirst();
  return host?.id;
}

/** A firmware download over HTTP (UEFI HTTP boot) goes on the timeline of the host that has the client's address. */
async function recordFirmwareEvent(store: Store, timeline: TimelineWriter, event: FirmwareServed): Promise<void> {
  const hostId = await hostIdAt(store, event.client.replace(/^::ffff:/, ''));
  if (hostId !== undefined)
    await timeline.record(hostId, 'firmware', {
      file: event.file,
      via: 'http',
      outcome: event.outcome,
      bytes: event.bytes,
    });
}

/** A finished TFTP transfer goes on the timeline of the host that has the client's address. */
async function recordTftpEvent(store: Store, timeline: TimelineWriter, event: TransferEvent): Promise<void> {
  const hostId = await hostIdAt(store, event.client.replace(/:\d+$/, ''));
  if (hostId !== undefined)
    await timeline.record(hostId, 'tftp', { file: event.filename, outcome: event.outcome, bytes: event.bytes });
}
