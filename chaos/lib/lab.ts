/**
 * A boot lab for one scenario: a server and a client namespace (test/helpers/netns.ts) where the
 * client namespace also plays the relay of a hypervisor network (giaddr GIADDR, 10.241.0.0/16, as
 * bench/boot-storm.ts does), a kvmfleet process in the server namespace that can be SIGKILLed and
 * started again on the same store, and the API reached from inside the server namespace.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createNamespacePair, type NamespacePair } from '../../test/helpers/netns.ts';
import { startServer, type ServerProcess } from '../../test/helpers/server.ts';
import { stormMac } from '../../bench/storm-macs.ts';
import type { Undo } from './cleanup.ts';

export const GIADDR = '10.241.0.1';
export const HV_NETWORK = 'chaos-hv';
export const SITE = 'chaos';
/** Known machines: MAC 02:0c:00:…, reserved address 10.241.<1+i/250>.<2+i%250>. */
export const knownMac = (i: number) => stormMac('02:0c:00', i);
export const knownIp = (i: number) => `10.241.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`;
export const knownName = (i: number) => `hv${String(i).padStart(4, '0')}.chaos.example.com`;
/** Unknown machines: MAC 02:0d:…; they take addresses from the dynamic range 10.241.200.1-10.241.239.254. */
export const unknownMac = (i: number) => stormMac('02:0d:00', i);

type Defer = (label: string, undo: Undo) => () => Promise<void>;

export interface Lab {
  readonly net: NamespacePair;
  readonly serverIp: string;
  /** The running kvmfleet (replaced by restart()). */
  readonly server: ServerProcess;
  /** Starts kvmfleet with the lab's arguments (after a kill, on the same store). */
  start(): Promise<ServerProcess>;
  /** An API call from inside the server namespace: status, headers and parsed body. */
  api(method: string, path: string, body?: string, contentType?: string): Promise<ApiAnswer>;
  /** SIGKILLs the current server (an expected end) and resolves once it is gone. */
  crash(): Promise<void>;
  /** Stops it with SIGTERM, as an operator would (an expected end). */
  stop(): Promise<void>;
  /** Any other end of a server (a crash nobody asked for) is listed here, for "died unexpectedly". */
  readonly unexpectedExits: string[];
}

export interface ApiAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

export interface LabOptions {
  readonly label: string;
  /** kvmfleet serve arguments besides the addresses (e.g. --data-dir, --database-url). */
  readonly args: readonly string[];
  readonly roles?: string;
  readonly env?: Record<string, string>;
}

export async function createLab(defer: Defer, options: LabOptions): Promise<Lab> {
  const net = await createNamespacePair(options.label);
  defer(`namespaces ${net.server.name}`, () => net.cleanup());
  await net.client.exec('ip', ['addr', 'add', `${GIADDR}/16`, 'dev', net.client.device]);
  await net.server.exec('ip', ['route', 'add', '10.241.0.0/16', 'via', net.client.ip]);
  const ip = net.server.ip;
  const args = [
    '--roles',
    options.roles ?? 'api,http,tftp,dhcp,worker',
    '--dhcp-server-id',
    ip,
    '--http-listen',
    `${ip}:8081`,
    '--tftp-listen',
    `${ip}:69`,
    '--boot-base-url',
    `http://${ip}:8081`,
    '--log-level',
    'warn',
    ...options.args,
  ];
  const unexpectedExits: string[] = [];
  let current: ServerProcess | undefined;
  const expected = new WeakSet<ServerProcess>();
  const lab: Lab = {
    net,
    serverIp: ip,
    get server() {
      if (!current) throw new Error('kvmfleet is not running');
      return current;
    },
    unexpectedExits,
    async crash() {
      expected.add(lab.server);
      await lab.server.kill('SIGKILL');
    },
    async stop() {
      expected.add(lab.server);
      await lab.server.kill('SIGTERM');
    },
    async start() {
      const server = await startServer(args, options.env ?? {}, 90_000, { netns: net.server.name });
      current = server;
      server.child.once('exit', (code, signal) => {
        if (!expected.has(server))
          unexpectedExits.push(`kvmfleet exited (${code ?? signal}): ${server.lines.slice(-5).join(' | ')}`);
      });
      return server;
    },
    async api(method, path, body, contentType = 'application/json') {
      const curl = [
        '-sS',
        '-m',
        '20',
        '-D',
        '-',
        '-X',
        method,
        ...(body !== undefined ? ['-H', `content-type: ${contentType}`, '--data-binary', '@-'] : []),
        `${lab.server.url}${path}`,
      ];
      const child = execFile('ip', ['netns', 'exec', net.server.name, 'curl', ...curl], {
        maxBuffer: 256 * 1024 * 1024,
        timeout: 30_000,
      });
      child.stdin?.end(body ?? '');
      const out = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stdout?.on('data', (d) => (text += d));
        child.on('error', reject);
        child.on('exit', (code) =>
          code === 0 ? resolve(text) : reject(new Error(`curl ${method} ${path} exited ${code}`)),
        );
      });
      const split = out.indexOf('\r\n\r\n');
      const head = out.slice(0, split).split('\r\n');
      const status = Number(head[0]?.split(' ')[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const text = out.slice(split + 4);
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status, headers, body: parsed };
    },
  };
  defer('kvmfleet', async () => {
    if (current) await lab.stop();
  });
  await lab.start();
  return lab;
}

/** Fails with the answer when the status is not 2xx. */
export async function apiOk(
  lab: Lab,
  method: string,
  path: string,
  body?: string,
  contentType?: string,
): Promise<unknown> {
  const answer = await lab.api(method, path, body, contentType);
  if (answer.status < 200 || answer.status > 299)
    throw new Error(`${method} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  return answer.body;
}

/**
 * The inventory every scenario boots against: site `chaos` (cap = known), the boot network of the
 * namespace pair, the relayed hypervisor network with a dynamic range for unknown machines (its
 * relay sends from GIADDR, or from the client namespace's own address: dhcp-probe.ts binds no
 * address), a profile, and `known` hosts with reserved addresses.
 */
export async function fillInventory(
  lab: Lab,
  known: number,
  dynamicRange: { start: string; end: string } = { start: '10.241.200.1', end: '10.241.239.254' },
): Promise<void> {
  const ip = lab.serverIp;
  const site = [
    'sites:',
    `  - name: ${SITE}`,
    `    buildCap: ${Math.max(known, 1)}`,
    '    networks:',
    `      - { name: chaos-boot, cidr: ${lab.net.subnet}.0/24 }`,
    `      - { name: ${HV_NETWORK}, cidr: 10.241.0.0/16, gateway: ${GIADDR}, domain: chaos.example.com, dynamicRange: { start: ${dynamicRange.start}, end: ${dynamicRange.end} }, relays: [${GIADDR}, ${lab.net.client.ip}] }`,
    'profiles:',
    `  - { name: rhel9, os: rhel9, installTreeUrl: "http://${ip}:8081/trees/rhel9" }`,
    '',
  ].join('\n');
  await apiOk(lab, 'POST', '/api/v1/import/site', site, 'application/yaml');
  if (known > 0) {
    const csv = [
      'hostname,mac,ip,network,profile',
      ...Array.from({ length: known }, (_, i) => `${knownName(i)},${knownMac(i)},${knownIp(i)},${HV_NETWORK},rhel9`),
    ].join('\n');
    await apiOk(lab, 'POST', '/api/v1/import/hosts', csv, 'text/csv');
  }
  await new Promise((r) => setTimeout(r, 1500)); // the DHCP role reloads networks and reservations
}

export interface HostRow {
  readonly hostname: string;
  readonly buildState: string;
}

export async function hosts(lab: Lab): Promise<HostRow[]> {
  return (await apiOk(lab, 'GET', '/api/v1/hosts?limit=99999')) as HostRow[];
}

export interface LeaseRow {
  readonly ip: string;
  readonly mac: string;
  readonly state: string;
}

export async function leases(lab: Lab): Promise<LeaseRow[]> {
  return (await apiOk(lab, 'GET', `/api/v1/leases?network=${HV_NETWORK}`)) as LeaseRow[];
}

/** Resident memory now and at its peak (VmRSS, VmHWM) of a process, in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** The pid of kvmfleet itself: the server child is `ip netns exec …`, which execs node in place. */
export function serverPid(server: ServerProcess): number {
  return server.child.pid!;
}

/** The API's error answer ({ error: { code, message } }), or empty strings. */
export function apiError(body: unknown): { code: string; message: string } {
  const error =
    typeof body === 'object' && body !== null
      ? (body as { error?: { code?: unknown; message?: unknown } }).error
      : undefined;
  return {
    code: typeof error?.code === 'string' ? error.code : '',
    message: typeof error?.message === 'string' ? error.message : '',
  };
}
