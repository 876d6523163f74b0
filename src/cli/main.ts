/** The `kvmfleet` command. `serve` runs the server; every other verb talks to it over the REST API. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_ROLES, parseHostPort, parseRoles, ROLES } from '../cluster/roles.ts';
import type { Host, Network, Profile, Site } from '../fleet/model.ts';
import { VERSION } from '../version.ts';
import { ApiClient, ApiError } from './client.ts';
import { parseMirrors } from '../boot/mirror.ts';
import { formatRecord, formatTable } from './table.ts';
import { registerVmCommands } from './vm-commands.ts';
import { registerPlanCommand } from './plan-command.ts';
import { registerAuthCommands } from './auth-commands.ts';
import { registerPowerCommands } from './power-commands.ts';
import { parseTrustedProxies } from '../boot/trusted-proxies.ts';

interface GlobalOptions {
  url: string;
  token?: string;
  cacert?: string;
  json?: boolean;
}

const program = new Command('kvmfleet')
  .description('Provision KVM fleets: network-boot hypervisors with Kickstart, then VMs from templates.')
  .version(VERSION)
  .addOption(new Option('--url <url>', 'kvmfleet API to talk to').env('KVMFLEET_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('--token <token>', 'API token').env('KVMFLEET_TOKEN'))
  .addOption(
    new Option(
      '--cacert <file>',
      'CA certificate (PEM) to verify an https:// API with, e.g. its self-signed certificate',
    ).env('KVMFLEET_CACERT'),
  )
  .option('--json', 'print JSON instead of tables');

const globals = () => program.opts<GlobalOptions>();
const client = () =>
  new ApiClient({
    baseUrl: globals().url,
    token: globals().token,
    ca: globals().cacert ? readFileSync(globals().cacert!) : undefined,
  });

/** --tls-cert and --tls-key come together. */
function tlsFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
): { certFile: string; keyFile: string } | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('--tls-cert and --tls-key go together');
  return { certFile, keyFile };
}
const print = (data: unknown, human: () => string) =>
  console.log(globals().json ? JSON.stringify(data, null, 2) : human());
const enc = encodeURIComponent;
const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
/** The failover pair's settings, checked: both or neither of role and peer. */
function failoverOptions(o: {
  dhcpFailover?: 'primary' | 'secondary';
  dhcpPeer?: string;
  dhcpSplit: number;
  dhcpLbMaxSeconds: number;
  dhcpMclt: number;
  dhcpPartnerDownDelay: number;
  dhcpFailoverKeyFile?: string;
}) {
  if (!o.dhcpFailover && !o.dhcpPeer) return undefined;
  if (!o.dhcpFailover || !o.dhcpPeer)
    throw new Error('a failover pair needs both --dhcp-failover primary|secondary and --dhcp-peer IP');
  if (o.dhcpSplit > 256) throw new Error('--dhcp-split is 0–256');
  return {
    role: o.dhcpFailover,
    peer: o.dhcpPeer,
    split: o.dhcpSplit,
    lbMaxSeconds: o.dhcpLbMaxSeconds,
    mcltSeconds: o.dhcpMclt,
    partnerDownDelayMs: o.dhcpPartnerDownDelay * 1000,
    keyFile: o.dhcpFailoverKeyFile,
  };
}

const positiveNumber = (value: string) => {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0) throw new Error(`"${value}" is not a positive number`);
  return n;
};
const integer = (value: string) => {
  if (!/^\d+$/.test(value)) throw new Error(`"${value}" is not a whole number`);
  return Number(value);
};

program
  .command('serve')
  .description('run kvmfleet (default: every role in one process on the embedded store)')
  .addOption(new Option('--data-dir <dir>', 'embedded store directory').env('KVMFLEET_DATA_DIR').default('./data'))
  .addOption(
    new Option('--database-url <url>', 'postgres://… to use a PostgreSQL server instead of the embedded store').env(
      'KVMFLEET_DATABASE_URL',
    ),
  )
  .addOption(new Option('--listen <host:port>', 'API address').env('KVMFLEET_LISTEN').default('127.0.0.1:8080'))
  .addOption(
    new Option(
      '--tls-cert <file>',
      'serve the API and console over HTTPS with this certificate (PEM; reloaded on SIGHUP)',
    ).env('KVMFLEET_TLS_CERT'),
  )
  .addOption(new Option('--tls-key <file>', "the certificate's private key (PEM)").env('KVMFLEET_TLS_KEY'))
  .addOption(
    new Option(
      '--insecure-http',
      'allow the API beyond loopback without TLS (only behind a TLS-terminating proxy)',
    ).env('KVMFLEET_INSECURE_HTTP'),
  )
  .addOption(
    new Option('--http-listen <host:port>', 'boot HTTP address (iPXE scripts, Kickstarts, install trees)')
      .env('KVMFLEET_HTTP_LISTEN')
      .default('0.0.0.0:8081'),
  )
  .addOption(
    new Option('--boot-base-url <url>', 'URL machines reach the boot HTTP role on (default: from each request)').env(
      'KVMFLEET_BOOT_BASE_URL',
    ),
  )
  .addOption(
    new Option('--trees-dir <dir>', 'install trees served under /trees/ (default: <data-dir>/trees)').env(
      'KVMFLEET_TREES_DIR',
    ),
  )
  .addOption(
    new Option('--mirror <name=url,...>', 'cache-proxy upstream install mirrors under /mirror/NAME/').env(
      'KVMFLEET_MIRRORS',
    ),
  )
  .addOption(
    new Option(
      '--build-timeout-min <minutes>',
      'a build that has not called back after this long fails and frees its slot',
    )
      .env('KVMFLEET_BUILD_TIMEOUT_MIN')
      .default(180)
      .argParser(integer),
  )
  .addOption(
    new Option('--retry-seconds <s>', 'how often a waiting machine asks again')
      .env('KVMFLEET_RETRY_SECONDS')
      .default(30)
      .argParser(integer),
  )
  .addOption(
    new Option('--build-sweep-seconds <s>', 'how often builds past their timeout are failed')
      .env('KVMFLEET_BUILD_SWEEP_SECONDS')
      .default(30)
      .argParser(integer),
  )
  .addOption(
    new Option(
      '--retain-host-events-days <days>',
      'host events kept this long (each host keeps its latest event of each kind); 0: for ever',
    )
      .env('KVMFLEET_RETAIN_HOST_EVENTS_DAYS')
      .default(30)
      .argParser(integer),
  )
  .addOption(
    new Option('--retain-audit-days <days>', 'audit log entries kept this long; 0: for ever')
      .env('KVMFLEET_RETAIN_AUDIT_DAYS')
      .default(365)
      .argParser(integer),
  )
  .addOption(
    new Option('--retain-jobs-days <days>', 'finished jobs (with their items) kept this long; 0: for ever')
      .env('KVMFLEET_RETAIN_JOBS_DAYS')
      .default(30)
      .argParser(integer),
  )
  .addOption(
    new Option('--retention-sweep-seconds <s>', 'how often rows past their retention are deleted')
      .env('KVMFLEET_RETENTION_SWEEP_SECONDS')
      .default(600)
      .argParser(integer),
  )
  .addOption(
    new Option(
      '--trust-proxy <addresses>',
      'load balancers (addresses or CIDRs, comma-separated) whose X-Forwarded-For the boot HTTP role believes; from anyone else it is ignored',
    ).env('KVMFLEET_TRUST_PROXY'),
  )
  .addOption(new Option('--tftp-listen <host:port>', 'TFTP address').env('KVMFLEET_TFTP_LISTEN').default('0.0.0.0:69'))
  .addOption(
    new Option(
      '--tftp-root <dir>',
      "TFTP served root (default: <data-dir>/tftp); Debian's iPXE binaries are served too",
    ).env('KVMFLEET_TFTP_ROOT'),
  )
  .addOption(
    new Option('--tftp-timeout-ms <ms>', 'TFTP retransmission timeout when the client negotiates none')
      .env('KVMFLEET_TFTP_TIMEOUT_MS')
      .default(1000)
      .argParser(integer),
  )
  .addOption(
    new Option('--roles <roles>', `comma-separated roles (${ROLES.join(',')}); dhcp only when named`)
      .env('KVMFLEET_ROLES')
      .default(DEFAULT_ROLES.join(',')),
  )
  .addOption(
    new Option('--dhcp-server-id <ip>', "this server's address on the boot network (required by the dhcp role)").env(
      'KVMFLEET_DHCP_SERVER_ID',
    ),
  )
  .addOption(
    new Option(
      '--dhcp-mode <mode>',
      'full: addresses and boot; proxy: boot information only, beside another DHCP server',
    )
      .choices(['full', 'proxy'])
      .env('KVMFLEET_DHCP_MODE')
      .default('full'),
  )
  .addOption(
    new Option('--dhcp-next-server <ip>', 'TFTP server for PXE firmware (default: the server id)').env(
      'KVMFLEET_DHCP_NEXT_SERVER',
    ),
  )
  .addOption(
    new Option(
      '--networks <names>',
      'distributed topology: this boot node serves only these networks (comma-separated)',
    ).env('KVMFLEET_NETWORKS'),
  )
  .addOption(
    new Option('--dhcp-failover <role>', 'one of a DHCP failover pair sharing a PostgreSQL store')
      .choices(['primary', 'secondary'])
      .env('KVMFLEET_DHCP_FAILOVER'),
  )
  .addOption(
    new Option('--dhcp-peer <ip>', "the failover partner's server address (heartbeats on UDP 647)").env(
      'KVMFLEET_DHCP_PEER',
    ),
  )
  .addOption(
    new Option('--dhcp-split <0-256>', "RFC 3074 load balancing: buckets below this are the primary's")
      .env('KVMFLEET_DHCP_SPLIT')
      .default(128)
      .argParser(integer),
  )
  .addOption(
    new Option('--dhcp-lb-max-seconds <s>', "answer the partner's client once its secs field reaches this")
      .env('KVMFLEET_DHCP_LB_MAX_SECONDS')
      .default(3)
      .argParser(integer),
  )
  .addOption(
    new Option('--dhcp-mclt <s>', 'longest lease given while the partner cannot be told')
      .env('KVMFLEET_DHCP_MCLT')
      .default(3600)
      .argParser(integer),
  )
  .addOption(
    new Option(
      '--dhcp-partner-down-delay <s>',
      'silence after which this server takes over all clients and the whole pool',
    )
      .env('KVMFLEET_DHCP_PARTNER_DOWN_DELAY')
      .default(10)
      .argParser(integer),
  )
  .addOption(
    new Option(
      '--dhcp-failover-key-file <path>',
      'file with the secret both servers of a failover pair authenticate their heartbeats with (HMAC-SHA256)',
    ).env('KVMFLEET_DHCP_FAILOVER_KEY_FILE'),
  )
  .addOption(
    new Option(
      '--dhcp-decline-probation <s>',
      'how long an address a client declined (in use by someone else) stays out of the pool',
    )
      .env('KVMFLEET_DHCP_DECLINE_PROBATION')
      .default(86400)
      .argParser(integer),
  )
  .addOption(
    new Option('--node-name <name>', 'this process in the node registry (default: host name and boot HTTP port)').env(
      'KVMFLEET_NODE_NAME',
    ),
  )
  .addOption(
    new Option('--site <site>', 'the site this boot node serves (clustered and distributed topologies)').env(
      'KVMFLEET_SITE',
    ),
  )
  .addOption(
    new Option(
      '--advertise-http <host:port>',
      'where load balancers reach this boot HTTP role (default: its listen address)',
    ).env('KVMFLEET_ADVERTISE_HTTP'),
  )
  .addOption(
    new Option('--cpu-overcommit <ratio>', 'VM placement: vCPUs allowed per hypervisor CPU')
      .env('KVMFLEET_CPU_OVERCOMMIT')
      .default(4)
      .argParser(positiveNumber),
  )
  .addOption(
    new Option('--memory-reserve-mib <MiB>', 'VM placement: memory kept for each hypervisor itself')
      .env('KVMFLEET_MEMORY_RESERVE_MIB')
      .default(1024)
      .argParser(integer),
  )
  .addOption(new Option('--log-level <level>', 'log level').env('KVMFLEET_LOG_LEVEL').default('info'))
  .action(
    async (options: {
      dataDir: string;
      databaseUrl?: string;
      listen: string;
      tlsCert?: string;
      tlsKey?: string;
      insecureHttp?: boolean;
      httpListen: string;
      bootBaseUrl?: string;
      treesDir?: string;
      mirror?: string;
      buildTimeoutMin: number;
      retrySeconds: number;
      buildSweepSeconds: number;
      retainHostEventsDays: number;
      retainAuditDays: number;
      retainJobsDays: number;
      retentionSweepSeconds: number;
      trustProxy?: string;
      tftpListen: string;
      tftpRoot?: string;
      dhcpServerId?: string;
      dhcpMode: 'full' | 'proxy';
      dhcpNextServer?: string;
      tftpTimeoutMs: number;
      roles: string;
      logLevel: string;
      nodeName?: string;
      site?: string;
      networks?: string;
      dhcpFailover?: 'primary' | 'secondary';
      dhcpPeer?: string;
      dhcpSplit: number;
      dhcpLbMaxSeconds: number;
      dhcpMclt: number;
      dhcpPartnerDownDelay: number;
      dhcpDeclineProbation: number;
      dhcpFailoverKeyFile?: string;
      advertiseHttp?: string;
      cpuOvercommit: number;
      memoryReserveMib: number;
    }) => {
      const { serve } = await import('../serve.ts');
      // One connection's unhandled error must not stop every role; anything else exits for systemd to restart.
      (await import('../process-guard.ts')).installProcessGuard();
      const running = await serve({
        dataDir: options.dataDir,
        databaseUrl: options.databaseUrl,
        api: {
          ...parseHostPort(options.listen, '--listen'),
          tls: tlsFiles(options.tlsCert, options.tlsKey),
          insecureHttp: !!options.insecureHttp,
        },
        http: {
          ...parseHostPort(options.httpListen, '--http-listen'),
          treesDir: options.treesDir,
          baseUrl: options.bootBaseUrl,
          trustProxy: parseTrustedProxies(options.trustProxy),
          mirrors: parseMirrors(options.mirror),
        },
        dhcp: {
          serverId: options.dhcpServerId,
          mode: options.dhcpMode,
          nextServer: options.dhcpNextServer,
          failover: failoverOptions(options),
          declineProbationSeconds: options.dhcpDeclineProbation,
          networks: options.networks ? list(options.networks) : undefined,
        },
        policy: { buildTimeoutMs: options.buildTimeoutMin * 60_000, retrySeconds: options.retrySeconds },
        retention: {
          hostEventsDays: options.retainHostEventsDays,
          auditDays: options.retainAuditDays,
          jobsDays: options.retainJobsDays,
        },
        sweepIntervalsMs: {
          buildTimeout: Math.max(1, options.buildSweepSeconds) * 1000,
          retention: Math.max(1, options.retentionSweepSeconds) * 1000,
        },
        placement: { cpuOvercommit: options.cpuOvercommit, reserveMiB: options.memoryReserveMib },
        tftp: {
          ...parseHostPort(options.tftpListen, '--tftp-listen'),
          root: options.tftpRoot,
          timeoutMs: options.tftpTimeoutMs,
        },
        roles: parseRoles(options.roles),
        logLevel: options.logLevel,
        node: { name: options.nodeName, site: options.site, advertiseHttp: options.advertiseHttp },
      });
      const where = Object.entries(running.endpoints)
        .map(([role, url]) => `${role} ${url}`)
        .join(', ');
      console.error(
        `kvmfleet ${VERSION} serving ${where} (store: ${running.store.kind}${running.store.kind === 'embedded' ? ` in ${options.dataDir}` : ''})`,
      );
      const stop = async (signal: string) => {
        console.error(`kvmfleet: ${signal}, stopping`);
        // Roles get 10 s to finish what they hold; a stop that hangs (a request that never ends) must not keep the process.
        setTimeout(() => {
          console.error('kvmfleet: roles did not stop within 10 s, exiting');
          process.exit(1);
        }, 10_000).unref();
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    },
  );

const site = program.command('site').description('sites and their build caps');
site.command('list').action(async () => {
  const sites = await client().request<Site[]>('GET', '/api/v1/sites');
  print(sites, () =>
    formatTable(
      ['name', 'build cap', 'description'],
      sites.map((s) => [s.name, s.buildCap, s.description]),
    ),
  );
});
site.command('show <name>').action(async (name: string) => {
  const data = await client().request<Site>('GET', `/api/v1/sites/${enc(name)}`);
  print(data, () => formatRecord({ ...data }));
});
site
  .command('add <name>')
  .option('--cap <n>', 'concurrent builds allowed', integer)
  .option('--description <text>')
  .action(async (name: string, options: { cap?: number; description?: string }) => {
    const data = await client().request<Site>('POST', '/api/v1/sites', {
      json: { name, buildCap: options.cap, description: options.description },
    });
    print(data, () => `site ${data.name} added (build cap ${data.buildCap})`);
  });
site
  .command('set <name>')
  .description('change a site (e.g. its build cap, at run time)')
  .option('--cap <n>', 'concurrent builds allowed', integer)
  .option('--description <text>')
  .action(async (name: string, options: { cap?: number; description?: string }) => {
    const data = await client().request<Site>('PATCH', `/api/v1/sites/${enc(name)}`, {
      json: { buildCap: options.cap, description: options.description },
    });
    print(data, () => formatRecord({ ...data }));
  });
site
  .command('builds <name>')
  .description('hosts building and queued at the site (admission control)')
  .action(async (name: string) => {
    const data = await client().request<{
      cap: number;
      building: { hostname: string; since: string }[];
      queued: { hostname: string; position: number; since: string }[];
    }>('GET', `/api/v1/sites/${enc(name)}/builds`);
    print(data, () =>
      [
        `site ${name}: ${data.building.length} of ${data.cap} building, ${data.queued.length} queued`,
        formatTable(
          ['state', 'hostname', 'position', 'since'],
          [
            ...data.building.map((b) => ['building', b.hostname, null, b.since]),
            ...data.queued.map((q) => ['queued', q.hostname, q.position, q.since]),
          ],
        ),
      ].join('\n'),
    );
  });
site.command('rm <name>').action(async (name: string) => {
  await client().request('DELETE', `/api/v1/sites/${enc(name)}`);
  if (!globals().json) console.log(`site ${name} removed`);
});

const network = program.command('network').description('networks (subnets) of sites');
network
  .command('list')
  .option('--site <site>')
  .action(async (options: { site?: string }) => {
    const data = await client().request<Network[]>(
      'GET',
      `/api/v1/networks${options.site ? `?site=${enc(options.site)}` : ''}`,
    );
    print(data, () =>
      formatTable(
        ['name', 'site', 'cidr', 'gateway', 'dynamic range', 'relays'],
        data.map((n) => [
          n.name,
          n.site,
          n.cidr,
          n.gateway,
          n.dynamicRange ? `${n.dynamicRange.start}-${n.dynamicRange.end}` : null,
          n.relays,
        ]),
      ),
    );
  });
network.command('show <name>').action(async (name: string) => {
  const data = await client().request<Network>('GET', `/api/v1/networks/${enc(name)}`);
  print(data, () => formatRecord({ ...data }));
});
network
  .command('add <name>')
  .requiredOption('--site <site>')
  .requiredOption('--cidr <cidr>', 'e.g. 10.1.0.0/22')
  .option('--gateway <ip>')
  .option('--dns <ips>', 'comma-separated', list)
  .option('--domain <domain>')
  .option('--range <start-end>', 'dynamic pool, e.g. 10.1.3.0-10.1.3.250')
  .option('--relay <ips>', 'relay agent addresses (giaddr), comma-separated', list)
  .option('--vlan <id>', 'VLAN id', integer)
  .option('--lease <seconds>', 'lease time', integer)
  .action(
    async (
      name: string,
      o: {
        site: string;
        cidr: string;
        gateway?: string;
        dns?: string[];
        domain?: string;
        range?: string;
        relay?: string[];
        vlan?: number;
        lease?: number;
      },
    ) => {
      let dynamicRange: { start: string; end: string } | undefined;
      if (o.range) {
        const [start, end] = o.range.split('-');
        if (!start || !end) throw new Error(`--range wants start-end, not "${o.range}"`);
        dynamicRange = { start, end };
      }
      const data = await client().request<Network>('POST', '/api/v1/networks', {
        json: {
          name,
          site: o.site,
          cidr: o.cidr,
          gateway: o.gateway,
          dns: o.dns,
          domain: o.domain,
          dynamicRange,
          relays: o.relay,
          vlan: o.vlan,
          leaseSeconds: o.lease,
        },
      });
      print(data, () => `network ${data.name} (${data.cidr}) added to site ${data.site}`);
    },
  );
network.command('rm <name>').action(async (name: string) => {
  await client().request('DELETE', `/api/v1/networks/${enc(name)}`);
  if (!globals().json) console.log(`network ${name} removed`);
});

const profile = program.command('profile').description('install profiles (OS, install tree, Kickstart template)');
profile.command('list').action(async () => {
  const data = await client().request<Profile[]>('GET', '/api/v1/profiles');
  print(data, () =>
    formatTable(
      ['name', 'os', 'arch', 'install tree', 'template'],
      data.map((p) => [p.name, p.os, p.arch, p.installTreeUrl, p.kickstartTemplate]),
    ),
  );
});
profile.command('show <name>').action(async (name: string) => {
  const data = await client().request<Profile>('GET', `/api/v1/profiles/${enc(name)}`);
  print(data, () => formatRecord({ ...data }));
});
profile
  .command('add <name>')
  .requiredOption('--os <os>', 'rhel6|rhel7|rhel8|rhel9|rhel10')
  .requiredOption('--tree <url>', 'install tree URL')
  .option('--arch <arch>')
  .option('--kernel <path>', 'kernel path in the tree')
  .option('--initrd <path>', 'initrd path in the tree')
  .option('--template <name>', 'Kickstart template')
  .option('--packages <list>', 'comma-separated packages/groups', list)
  .option('--kernel-args <args>')
  .option('--root-password-hash <hash>', 'crypt(3) hash for rootpw --iscrypted')
  .action(
    async (
      name: string,
      o: {
        os: string;
        tree: string;
        arch?: string;
        kernel?: string;
        initrd?: string;
        template?: string;
        packages?: string[];
        kernelArgs?: string;
        rootPasswordHash?: string;
      },
    ) => {
      const data = await client().request<Profile>('POST', '/api/v1/profiles', {
        json: {
          name,
          os: o.os,
          installTreeUrl: o.tree,
          arch: o.arch,
          kernelPath: o.kernel,
          initrdPath: o.initrd,
          kickstartTemplate: o.template,
          packages: o.packages,
          kernelArgs: o.kernelArgs,
          rootPasswordHash: o.rootPasswordHash,
        },
      });
      print(data, () => `profile ${data.name} added`);
    },
  );
profile.command('rm <name>').action(async (name: string) => {
  await client().request('DELETE', `/api/v1/profiles/${enc(name)}`);
  if (!globals().json) console.log(`profile ${name} removed`);
});

const host = program.command('host').description('hosts (bare-metal machines)');
host
  .command('list')
  .option('--site <site>')
  .option('--network <network>')
  .option('--state <state>', 'discovered|ready|building|built|failed')
  .option('--find <text>', 'part of a hostname, an address or a MAC')
  .option('--limit <n>', 'at most this many (by hostname)')
  .option('--offset <n>', 'skip this many first')
  .action(
    async (o: { site?: string; network?: string; state?: string; find?: string; limit?: string; offset?: string }) => {
      const { find, ...rest } = o;
      const query = new URLSearchParams(
        Object.entries({ ...rest, q: find }).filter(([, v]) => v !== undefined) as [string, string][],
      ).toString();
      const data = await client().request<Host[]>('GET', `/api/v1/hosts${query ? `?${query}` : ''}`);
      print(data, () =>
        formatTable(
          ['hostname', 'mac', 'ip', 'network', 'profile', 'state'],
          data.map((h) => [h.hostname, h.macs, h.ip, h.network, h.profile, h.buildState]),
        ),
      );
    },
  );
host.command('show <hostname>').action(async (name: string) => {
  const data = await client().request<Host>('GET', `/api/v1/hosts/${enc(name)}`);
  print(data, () => formatRecord({ ...data }));
});
host
  .command('add <hostname>')
  .requiredOption('--mac <mac...>', 'MAC address(es)')
  .requiredOption('--network <network>')
  .requiredOption('--profile <profile>')
  .option('--ip <ip>', 'reserved address (outside the dynamic range)')
  .option('--uuid <uuid>', 'SMBIOS UUID')
  .action(
    async (hostname: string, o: { mac: string[]; network: string; profile: string; ip?: string; uuid?: string }) => {
      const data = await client().request<Host>('POST', '/api/v1/hosts', {
        json: { hostname, macs: o.mac, network: o.network, profile: o.profile, ip: o.ip, smbiosUuid: o.uuid },
      });
      print(data, () => `host ${data.hostname} added (${data.ip ?? 'dynamic address'}, ${data.buildState})`);
    },
  );
host
  .command('adopt <discovered>')
  .description('adopt a discovered machine (host list --state discovered): it installs at its next retry')
  .requiredOption('--hostname <hostname>', 'its name from now on')
  .requiredOption('--profile <profile>')
  .option('--network <network>', 'default: the network it was discovered on')
  .option('--ip <ip>', 'reserved address (outside the dynamic range)')
  .action(async (discovered: string, o: { hostname: string; profile: string; network?: string; ip?: string }) => {
    const data = await client().request<Host>('POST', `/api/v1/hosts/${enc(discovered)}/adopt`, {
      json: { hostname: o.hostname, profile: o.profile, network: o.network, ip: o.ip },
    });
    print(
      data,
      () =>
        `${discovered} adopted as ${data.hostname} (${data.ip ?? 'dynamic address'}, ${data.network}, ${data.profile}): ${data.buildState}`,
    );
  });
host
  .command('rebuild <hostname>')
  .description('install the host again at its next network boot')
  .action(async (name: string) => {
    const data = await client().request<{ hostname: string }>('POST', `/api/v1/hosts/${enc(name)}/rebuild`);
    print(data, () => `host ${data.hostname} will be rebuilt at its next network boot`);
  });
host
  .command('mark-built <hostname>')
  .description('declare a building or failed host built (installed, but its callback was lost); audited')
  .action(async (name: string) => {
    const data = await client().request<{ hostname: string; was: string }>(
      'POST',
      `/api/v1/hosts/${enc(name)}/mark-built`,
    );
    print(data, () => `host ${data.hostname} marked built (was ${data.was})`);
  });
host
  .command('timeline <hostname>')
  .description('boot and build events of a host (DHCP, TFTP, script, kernel, Kickstart, built)')
  .action(async (name: string) => {
    const data = await client().request<{ at: string; kind: string; detail: Record<string, unknown> }[]>(
      'GET',
      `/api/v1/hosts/${enc(name)}/timeline`,
    );
    print(data, () =>
      formatTable(
        ['at', 'event', 'detail'],
        data.map((e) => [e.at, e.kind, Object.keys(e.detail).length ? JSON.stringify(e.detail) : null]),
      ),
    );
  });
host.command('rm <hostname>').action(async (name: string) => {
  await client().request('DELETE', `/api/v1/hosts/${enc(name)}`);
  if (!globals().json) console.log(`host ${name} removed`);
});

program
  .command('boot')
  .description('what machines get from the boot service')
  .command('show <hostname>')
  .description('print the iPXE script the host would get now (no side effects)')
  .option('--platform <platform>', 'pcbios or efi')
  .action(async (name: string, o: { platform?: string }) => {
    process.stdout.write(
      await client().request<string>(
        'GET',
        `/api/v1/hosts/${enc(name)}/boot-script${o.platform ? `?platform=${enc(o.platform)}` : ''}`,
      ),
    );
  });

program
  .command('kickstart')
  .description('Kickstart files')
  .command('render <hostname>')
  .description("print the host's Kickstart to stdout (with a placeholder build token)")
  .action(async (name: string) => {
    process.stdout.write(await client().request<string>('GET', `/api/v1/hosts/${enc(name)}/kickstart`));
  });

program
  .command('import <file>')
  .description('import a site YAML (.yaml/.yml) or a hosts CSV (.csv), all or nothing')
  .option('--dry-run', 'check only; write nothing')
  .option('--upsert', 'hosts: update hosts that exist instead of refusing them')
  .option('--kind <kind>', 'site or hosts (for standard input, "-", or a file named otherwise)')
  .action(async (file: string, o: { dryRun?: boolean; upsert?: boolean; kind?: string }) => {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    const ext = extname(file).toLowerCase();
    if (o.kind !== undefined && o.kind !== 'site' && o.kind !== 'hosts')
      throw new Error(`--kind is site or hosts, not "${o.kind}"`);
    const kind = o.kind ?? (ext === '.csv' ? 'hosts' : ext === '.yaml' || ext === '.yml' ? 'site' : undefined);
    if (!kind) throw new Error(`cannot tell what ${file} is: name it .yaml/.yml (site) or .csv (hosts), or say --kind`);
    const query = new URLSearchParams({
      ...(o.dryRun ? { dryRun: 'true' } : {}),
      ...(o.upsert ? { mode: 'upsert' } : {}),
    }).toString();
    const result = await client().request<Record<string, unknown>>(
      'POST',
      `/api/v1/import/${kind}${query ? `?${query}` : ''}`,
      { text, contentType: kind === 'hosts' ? 'text/csv' : 'application/yaml' },
    );
    print(
      result,
      () => `${o.dryRun ? 'checked (dry run, nothing written)' : 'imported'} ${file}: ${JSON.stringify(result)}`,
    );
  });

/** Problems of an import, one line each, so an operator can fix the file. */
function describeDetails(details: unknown): string {
  const d = details as
    | {
        rows?: { line: number; hostname: string; problems: { code: string; message: string }[] }[];
        items?: { item: string; name: string; problems: { code: string; message: string }[] }[];
        problems?: { code: string; message: string }[];
      }
    | undefined;
  if (d?.rows)
    return formatTable(
      ['line', 'hostname', 'code', 'problem'],
      d.rows.flatMap((r) => r.problems.map((p) => [r.line, r.hostname, p.code, p.message])),
    );
  if (d?.items)
    return formatTable(
      ['item', 'name', 'code', 'problem'],
      d.items.flatMap((r) => r.problems.map((p) => [r.item, r.name, p.code, p.message])),
    );
  if (d?.problems) return d.problems.map((p) => `  ${p.code}: ${p.message}`).join('\n');
  return '';
}

registerVmCommands(program, { client, print, json: () => !!globals().json });
registerPlanCommand(program, () => !!globals().json);
registerAuthCommands(program, { client, print, json: () => !!globals().json });
registerPowerCommands(program, { client, print, json: () => !!globals().json });

program
  .command('nodes')
  .description('kvmfleet processes (boot servers, API nodes) and whether they are alive')
  .option('--site <site>')
  .action(async (o: { site?: string }) => {
    const data = await client().request<
      {
        name: string;
        site: string | null;
        roles: string[];
        httpAddress: string | null;
        seenAt: string;
        alive: boolean;
        version: string;
      }[]
    >('GET', `/api/v1/nodes${o.site ? `?site=${enc(o.site)}` : ''}`);
    print(data, () =>
      formatTable(
        ['name', 'site', 'roles', 'boot http', 'seen', 'alive', 'version'],
        data.map((n) => [n.name, n.site, n.roles, n.httpAddress, n.seenAt, n.alive, n.version]),
      ),
    );
  });
program
  .command('haproxy-config <site>')
  .description("HAProxy configuration for the site's live boot HTTP nodes (check it with haproxy -c -f)")
  .option('--bind <host:port>', 'where HAProxy listens for machines', '*:8081')
  .option('--stats <host:port>', "also serve HAProxy's stats page here")
  .option('--check-interval <ms>', 'health check period (a node is down after 2 failed checks)', '2000')
  .action(async (site: string, o: { bind: string; stats?: string; checkInterval: string }) => {
    const query = new URLSearchParams({
      bind: o.bind,
      checkIntervalMs: o.checkInterval,
      ...(o.stats ? { stats: o.stats } : {}),
    }).toString();
    process.stdout.write(await client().request<string>('GET', `/api/v1/sites/${enc(site)}/haproxy.cfg?${query}`));
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ApiError) {
    if (globals().json)
      console.error(
        JSON.stringify({ error: { code: error.code, message: error.message, details: error.details } }, null, 2),
      );
    else {
      console.error(`error: ${error.message} [${error.code}]`);
      const more = describeDetails(error.details);
      if (more) console.error(more);
    }
  } else {
    console.error(`error: ${(error as Error).message}`);
  }
  process.exit(1);
});
