/**
 * Every `kvmfleet serve` setting, declared once: its flag, help, environment variable, default and parser. The serve
 * command's flags, the configuration file's keys (the flag names: `data-dir: /srv/kvmfleet`), the environment names
 * and `--print-config` are all made from this table; `serveOptionsFrom` turns the flat values into `ServeOptions`.
 * Defaults come from the modules that own them, so a default changed there changes here too.
 */
import { DEFAULT_BUILD_POLICY, BUILD_SWEEP_INTERVAL_MS } from '../fleet/builds.ts';
import { FAILOVER_DEFAULTS } from '../boot/dhcp-failover.ts';
import { DECLINE_PROBATION_MS } from '../boot/dhcp-service.ts';
import { parseMirrors } from '../boot/mirror.ts';
import { parseTrustedProxies } from '../boot/trusted-proxies.ts';
import { DEFAULT_ROLES, parseHostPort, parseRoles, ROLES } from '../cluster/roles.ts';
import type { ServeOptions } from '../serve.ts';
import { DEFAULT_RETENTION, RETENTION_INTERVAL_MS } from '../store/retention.ts';
import { DEFAULT_PLACEMENT_POLICY } from '../vms/placement.ts';

export type SettingValue = string | number | boolean;

export interface Setting<T extends SettingValue = SettingValue> {
  /** The value's placeholder in --help (`<dir>`); none for a switch (`--insecure-http`). */
  readonly arg?: string;
  readonly help: string;
  /** Environment variable (default: KVMFLEET_ and the flag in capitals). */
  readonly env?: string;
  readonly default?: T;
  /** Text (a flag, a variable, a file's scalar) → value; throws with what is wrong. Switches have none. */
  readonly parse?: (text: string) => T;
  readonly choices?: readonly string[];
  /** A comma-separated list: the configuration file may give it as a YAML sequence too. */
  readonly list?: boolean;
  /** How --print-config shows it when it holds a secret. */
  readonly mask?: (value: T) => string;
}

const text = (value: string) => value;
export const integer = (value: string): number => {
  if (!/^\d+$/.test(value)) throw new Error(`"${value}" is not a whole number`);
  return Number(value);
};
export const positiveNumber = (value: string): number => {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0) throw new Error(`"${value}" is not a positive number`);
  return n;
};
/** A parser that checks the text with `check` (which throws) and keeps it as it is. */
const checked =
  (check: (value: string) => unknown) =>
  (value: string): string => {
    check(value);
    return value;
  };
const hostPort = (flag: string) => checked((value) => parseHostPort(value, `--${flag}`));

/**
 * postgres://user:password@host/db → postgres://user:***@host/db, and any password=… parameter. Conservative: the
 * password runs to the last "@", so one with an unencoded "/" or "@" in it is masked whole too.
 */
export function maskUrlPassword(value: string): string {
  let masked = value;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value);
  if (scheme) {
    const rest = value.slice(scheme[0].length);
    const at = rest.lastIndexOf('@');
    const colon = rest.indexOf(':');
    if (at >= 0 && colon >= 0 && colon < at) masked = `${scheme[0]}${rest.slice(0, colon)}:***${rest.slice(at)}`;
  }
  return masked.replace(/(\bpassword=)('[^']*'|[^\s&#]*)/gi, '$1***');
}

// `satisfies` keeps each entry's own type (with or without a default), so ServeSettings below is exact.
export const SERVE_SETTINGS = {
  dataDir: { arg: '<dir>', help: 'embedded store directory', default: './data', parse: text },
  databaseUrl: {
    arg: '<url>',
    help: 'postgres://… to use a PostgreSQL server instead of the embedded store',
    parse: text,
    mask: maskUrlPassword,
  },
  listen: { arg: '<host:port>', help: 'API address', default: '127.0.0.1:8080', parse: hostPort('listen') },
  tlsCert: {
    arg: '<file>',
    help: 'serve the API and console over HTTPS with this certificate (PEM; reloaded on SIGHUP)',
    parse: text,
  },
  tlsKey: { arg: '<file>', help: "the certificate's private key (PEM)", parse: text },
  insecureHttp: { help: 'allow the API beyond loopback without TLS (only behind a TLS-terminating proxy)' },
  httpListen: {
    arg: '<host:port>',
    help: 'boot HTTP address (iPXE scripts, Kickstarts, install trees)',
    default: '0.0.0.0:8081',
    parse: hostPort('http-listen'),
  },
  bootBaseUrl: {
    arg: '<url>',
    help: 'URL machines reach the boot HTTP role on (default: from each request)',
    parse: text,
  },
  treesDir: { arg: '<dir>', help: 'install trees served under /trees/ (default: <data-dir>/trees)', parse: text },
  mirror: {
    arg: '<name=url,...>',
    help: 'cache-proxy upstream install mirrors under /mirror/NAME/',
    env: 'KVMFLEET_MIRRORS',
    parse: checked(parseMirrors),
    list: true,
  },
  buildTimeoutMin: {
    arg: '<minutes>',
    help: 'a build that has not called back after this long fails and frees its slot',
    default: DEFAULT_BUILD_POLICY.buildTimeoutMs / 60_000,
    parse: integer,
  },
  retrySeconds: {
    arg: '<s>',
    help: 'how often a waiting machine asks again',
    default: DEFAULT_BUILD_POLICY.retrySeconds,
    parse: integer,
  },
  buildSweepSeconds: {
    arg: '<s>',
    help: 'how often builds past their timeout are failed',
    default: BUILD_SWEEP_INTERVAL_MS / 1000,
    parse: integer,
  },
  retainHostEventsDays: {
    arg: '<days>',
    help: 'host events kept this long (each host keeps its latest event of each kind); 0: for ever',
    default: DEFAULT_RETENTION.hostEventsDays,
    parse: integer,
  },
  retainAuditDays: {
    arg: '<days>',
    help: 'audit log entries kept this long; 0: for ever',
    default: DEFAULT_RETENTION.auditDays,
    parse: integer,
  },
  retainJobsDays: {
    arg: '<days>',
    help: 'finished jobs (with their items) kept this long; 0: for ever',
    default: DEFAULT_RETENTION.jobsDays,
    parse: integer,
  },
  retentionSweepSeconds: {
    arg: '<s>',
    help: 'how often rows past their retention are deleted',
    default: RETENTION_INTERVAL_MS / 1000,
    parse: integer,
  },
  trustProxy: {
    arg: '<addresses>',
    help: 'load balancers (addresses or CIDRs, comma-separated) whose X-Forwarded-For the boot HTTP role believes; from anyone else it is ignored',
    parse: checked(parseTrustedProxies),
    list: true,
  },
  tftpListen: { arg: '<host:port>', help: 'TFTP address', default: '0.0.0.0:69', parse: hostPort('tftp-listen') },
  tftpRoot: {
    arg: '<dir>',
    help: "TFTP served root (default: <data-dir>/tftp); Debian's iPXE binaries are served too",
    parse: text,
  },
  tftpTimeoutMs: {
    arg: '<ms>',
    help: 'TFTP retransmission timeout when the client negotiates none',
    // The TFTP server's own default (protocols/tftp/server.ts), given explicitly as the CLI always has.
    default: 1000,
    parse: integer,
  },
  roles: {
    arg: '<roles>',
    help: `comma-separated roles (${ROLES.join(',')}); dhcp only when named`,
    default: DEFAULT_ROLES.join(','),
    parse: checked(parseRoles),
    list: true,
  },
  dhcpServerId: {
    arg: '<ip>',
    help: "this server's address on the boot network (required by the dhcp role)",
    parse: text,
  },
  dhcpMode: {
    arg: '<mode>',
    help: 'full: addresses and boot; proxy: boot information only, beside another DHCP server',
    choices: ['full', 'proxy'],
    default: 'full',
    parse: text,
  },
  dhcpNextServer: { arg: '<ip>', help: 'TFTP server for PXE firmware (default: the server id)', parse: text },
  networks: {
    arg: '<names>',
    help: 'distributed topology: this boot node serves only these networks (comma-separated)',
    parse: text,
    list: true,
  },
  dhcpFailover: {
    arg: '<role>',
    help: 'one of a DHCP failover pair sharing a PostgreSQL store',
    choices: ['primary', 'secondary'],
    parse: text,
  },
  dhcpPeer: { arg: '<ip>', help: "the failover partner's server address (heartbeats on UDP 647)", parse: text },
  dhcpSplit: {
    arg: '<0-256>',
    help: "RFC 3074 load balancing: buckets below this are the primary's",
    default: FAILOVER_DEFAULTS.split,
    parse: integer,
  },
  dhcpLbMaxSeconds: {
    arg: '<s>',
    help: "answer the partner's client once its secs field reaches this",
    default: FAILOVER_DEFAULTS.lbMaxSeconds,
    parse: integer,
  },
  dhcpMclt: {
    arg: '<s>',
    help: 'longest lease given while the partner cannot be told',
    default: FAILOVER_DEFAULTS.mcltSeconds,
    parse: integer,
  },
  dhcpPartnerDownDelay: {
    arg: '<s>',
    help: 'silence after which this server takes over all clients and the whole pool',
    default: FAILOVER_DEFAULTS.partnerDownDelayMs / 1000,
    parse: integer,
  },
  dhcpFailoverKeyFile: {
    arg: '<path>',
    help: 'file with the secret both servers of a failover pair authenticate their heartbeats with (HMAC-SHA256)',
    parse: text,
  },
  dhcpDeclineProbation: {
    arg: '<s>',
    help: 'how long an address a client declined (in use by someone else) stays out of the pool',
    default: DECLINE_PROBATION_MS / 1000,
    parse: integer,
  },
  nodeName: {
    arg: '<name>',
    help: 'this process in the node registry (default: host name and boot HTTP port)',
    parse: text,
  },
  site: { arg: '<site>', help: 'the site this boot node serves (clustered and distributed topologies)', parse: text },
  advertiseHttp: {
    arg: '<host:port>',
    help: 'where load balancers reach this boot HTTP role (default: its listen address)',
    parse: text,
  },
  cpuOvercommit: {
    arg: '<ratio>',
    help: 'VM placement: vCPUs allowed per hypervisor CPU',
    default: DEFAULT_PLACEMENT_POLICY.cpuOvercommit,
    parse: positiveNumber,
  },
  memoryReserveMib: {
    arg: '<MiB>',
    help: 'VM placement: memory kept for each hypervisor itself',
    default: DEFAULT_PLACEMENT_POLICY.reserveMiB,
    parse: integer,
  },
  logLevel: {
    arg: '<level>',
    help: 'log level: fatal, error, warn, info, debug, trace or silent',
    default: 'info',
    parse: text,
  },
} as const satisfies Record<string, Setting<string> | Setting<number> | Setting<boolean>>;

export type SettingName = keyof typeof SERVE_SETTINGS;
type Declared = typeof SERVE_SETTINGS;
/** A switch is a boolean; a setting with a parser has its parser's type; with a default it is always there. */
type ValueOf<S> = S extends { parse: (text: string) => infer T } ? T : boolean;
type Values = {
  -readonly [K in SettingName]: Declared[K] extends { default: unknown }
    ? ValueOf<Declared[K]>
    : ValueOf<Declared[K]> | undefined;
};
/** The values of every setting; the two with choices narrowed to them. */
export type ServeSettings = Omit<Values, 'dhcpMode' | 'dhcpFailover'> & {
  dhcpMode: 'full' | 'proxy';
  dhcpFailover: 'primary' | 'secondary' | undefined;
};

export const SETTING_NAMES = Object.keys(SERVE_SETTINGS) as SettingName[];

export function settingOf(name: SettingName): Setting {
  return SERVE_SETTINGS[name] as Setting;
}

/** dataDir → data-dir: the flag without its dashes, and the configuration file's key. */
export function flagOf(name: SettingName): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function envOf(name: SettingName): string {
  return settingOf(name).env ?? `KVMFLEET_${flagOf(name).toUpperCase().replace(/-/g, '_')}`;
}

/** Every setting at its default (undefined where it has none). */
export function defaultSettings(): ServeSettings {
  return Object.fromEntries(SETTING_NAMES.map((name) => [name, settingOf(name).default])) as ServeSettings;
}

const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');

/** --tls-cert and --tls-key come together. */
function tlsFiles(
  certFile: string | undefined,
  keyFile: string | undefined,
): { certFile: string; keyFile: string } | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('--tls-cert and --tls-key go together');
  return { certFile, keyFile };
}

/** The failover pair's settings, checked: both or neither of role and peer. */
function failoverOptions(o: ServeSettings) {
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

/** The flat settings (flags, environment, file) as what `serve()` takes; throws on combinations that do not go. */
export function serveOptionsFrom(o: ServeSettings): ServeOptions {
  return {
    dataDir: o.dataDir,
    databaseUrl: o.databaseUrl,
    api: {
      ...parseHostPort(o.listen, '--listen'),
      tls: tlsFiles(o.tlsCert, o.tlsKey),
      insecureHttp: !!o.insecureHttp,
    },
    http: {
      ...parseHostPort(o.httpListen, '--http-listen'),
      treesDir: o.treesDir,
      baseUrl: o.bootBaseUrl,
      trustProxy: parseTrustedProxies(o.trustProxy),
      mirrors: parseMirrors(o.mirror),
    },
    dhcp: {
      serverId: o.dhcpServerId,
      mode: o.dhcpMode,
      nextServer: o.dhcpNextServer,
      failover: failoverOptions(o),
      declineProbationSeconds: o.dhcpDeclineProbation,
      networks: o.networks ? list(o.networks) : undefined,
    },
    policy: { buildTimeoutMs: o.buildTimeoutMin * 60_000, retrySeconds: o.retrySeconds },
    retention: { hostEventsDays: o.retainHostEventsDays, auditDays: o.retainAuditDays, jobsDays: o.retainJobsDays },
    sweepIntervalsMs: {
      buildTimeout: Math.max(1, o.buildSweepSeconds) * 1000,
      retention: Math.max(1, o.retentionSweepSeconds) * 1000,
    },
    placement: { cpuOvercommit: o.cpuOvercommit, reserveMiB: o.memoryReserveMib },
    tftp: { ...parseHostPort(o.tftpListen, '--tftp-listen'), root: o.tftpRoot, timeoutMs: o.tftpTimeoutMs },
    roles: parseRoles(o.roles),
    logLevel: o.logLevel,
    node: { name: o.nodeName, site: o.site, advertiseHttp: o.advertiseHttp },
  };
}
