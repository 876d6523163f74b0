/**
 * DHCP by ISC's method: for each server, the highest offered rate at which at most 2.5 % of 4-way
 * exchanges (DISCOVER → OFFER → REQUEST → ACK) are dropped. perfdhcp drives the exchanges as a relay
 * (like a router's ip-helper), each server alone in its own namespace pair with the same /16 pool.
 * The search (dhcp-search.ts) probes offered rates for a few seconds each against one running
 * server: doubling from a start rate until a probe fails, then bisecting, within a time budget.
 * Servers: kvmfleet (embedded store, or PostgreSQL) and Kea 2.2 (memfile single-threaded, memfile
 * multi-threaded, and its own pgsql lease backend on the same PostgreSQL server as kvmfleet's).
 */
import { type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createNamespacePair, type NamespacePair } from '../test/helpers/netns.ts';
import { startServer } from '../test/helpers/server.ts';
import { MAX_DROP_PERCENT, searchCeiling, type Ceiling, type Probe } from './dhcp-search.ts';
import type { BenchPostgres } from './postgres.ts';

export type DhcpServer = 'kvmfleet' | 'kvmfleet-pg' | 'kea' | 'kea-mt' | 'kea-pg';

const GIADDR = '10.240.0.1';
const POOL = { start: '10.240.1.0', end: '10.240.255.250' };
/** perfdhcp's simulated clients: fewer than the pool's ~65 000 addresses, so a long search cannot drain it. */
const CLIENTS = 60_000;

async function startKvmfleet(net: NamespacePair, work: string, databaseUrl?: string): Promise<() => Promise<void>> {
  const server = await startServer(
    [
      '--roles',
      'api,dhcp',
      ...(databaseUrl ? ['--database-url', databaseUrl] : ['--data-dir', join(work, 'data')]),
      '--dhcp-server-id',
      net.server.ip,
      '--log-level',
      'error',
    ],
    // e.g. KVMFLEET_BENCH_NODE_OPTIONS='--require ./profile.cjs' to profile the server (--cpu-prof is refused there).
    process.env.KVMFLEET_BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.KVMFLEET_BENCH_NODE_OPTIONS } : {},
    60_000,
    { netns: net.server.name },
  );
  const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-boot, cidr: ${net.subnet}.0/24 }\n      - { name: lab-load, cidr: 10.240.0.0/16, gateway: 10.240.0.1, dynamicRange: { start: ${POOL.start}, end: ${POOL.end} }, leaseSeconds: 3600 }\n`;
  await net.server.exec('curl', [
    '-sS',
    '--fail-with-body',
    '-X',
    'POST',
    '-H',
    'content-type: application/yaml',
    '--data-binary',
    site,
    `${server.url}/api/v1/import/site`,
  ]);
  await new Promise((r) => setTimeout(r, 1500)); // the DHCP role picks up new networks within a second
  return async () => {
    if (process.env.KVMFLEET_BENCH_DEBUG) {
      console.error((await net.server.exec('curl', ['-sS', `${server.url}/api/v1/dhcp/stats`])).stdout);
      // The kernel's UDP counters in the server's namespace: RcvbufErrors are datagrams the socket had no room for.
      console.error((await net.server.exec('grep', ['^Udp:', '/proc/net/snmp'])).stdout);
      console.error((await net.server.exec('ss', ['-uamn', 'sport', '= :67'])).stdout);
    }
    await server.kill();
  };
}

async function startKea(
  kind: 'kea' | 'kea-mt' | 'kea-pg',
  net: NamespacePair,
  work: string,
  pg?: BenchPostgres,
): Promise<() => Promise<void>> {
  let leaseDatabase: Record<string, unknown>;
  if (kind === 'kea-pg') {
    if (!pg) throw new Error('kea-pg needs the bench PostgreSQL server');
    const name = await pg.createDatabase(`kea_${process.pid}_${Date.now() % 100000}`);
    // Kea's own schema, as an operator installs it.
    await promisify(execFile)('kea-admin', [
      'db-init',
      'pgsql',
      '-h',
      '127.0.0.1',
      '-P',
      String(pg.port),
      '-u',
      'kvmfleet',
      '-n',
      name,
    ]);
    leaseDatabase = { type: 'postgresql', name, host: pg.socketDir, port: pg.port, user: 'kvmfleet' };
  } else {
    // persist: every lease change is appended to the CSV file (not fsynced: see the row's note).
    leaseDatabase = { type: 'memfile', persist: true, name: join(work, 'kea-leases.csv'), 'lfc-interval': 0 };
  }
  const config = {
    Dhcp4: {
      'interfaces-config': { interfaces: [net.server.device], 'dhcp-socket-type': 'udp' },
      'lease-database': leaseDatabase,
      // Kea 2.2's default is off; the MT row uses both cores, as ISC's multi-threaded figures do.
      'multi-threading':
        kind === 'kea-mt'
          ? { 'enable-multi-threading': true, 'thread-pool-size': 2, 'packet-queue-size': 64 }
          : { 'enable-multi-threading': false },
      'valid-lifetime': 3600,
      subnet4: [
        { subnet: `${net.subnet}.0/24`, id: 1 },
        {
          subnet: '10.240.0.0/16',
          id: 2,
          pools: [{ pool: `${POOL.start} - ${POOL.end}` }],
          'option-data': [{ name: 'routers', data: '10.240.0.1' }],
        },
      ],
      loggers: [{ name: 'kea-dhcp4', severity: 'ERROR', output_options: [{ output: join(work, 'kea.log') }] }],
    },
  };
  writeFileSync(join(work, 'kea.json'), JSON.stringify(config));
  const child: ChildProcess = net.server.spawn('kea-dhcp4', ['-c', join(work, 'kea.json')], {
    stdio: 'ignore',
    env: { ...process.env, KEA_PIDFILE_DIR: work, KEA_LOCKFILE_DIR: work },
  });
  await new Promise((r) => setTimeout(r, 1500));
  if (child.exitCode !== null) throw new Error(`${kind} did not start (see its log in ${work})`);
  return async () => {
    child.kill();
    if (child.exitCode === null) await once(child, 'exit');
  };
}

/** One probe: perfdhcp at `rate` offered for `seconds`; drops are the DISCOVERs that got no ACK. */
async function perfdhcp(net: NamespacePair, rate: number, seconds: number): Promise<Probe> {
  const { stdout } = await net.client
    .exec(
      'perfdhcp',
      [
        '-4',
        '-l',
        GIADDR,
        '-r',
        String(rate),
        '-R',
        String(CLIENTS),
        '-p',
        String(seconds),
        '-W',
        '1000000',
        net.server.ip,
      ],
      { timeoutMs: (seconds + 30) * 1000 },
    )
    .catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' })); // perfdhcp exits non-zero when it saw drops
  if (process.env.KVMFLEET_BENCH_DEBUG) console.error(stdout);
  const sent = [...stdout.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const received = [...stdout.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  if (sent.length < 2 || received.length < 2) throw new Error(`perfdhcp output not understood:\n${stdout}`);
  const discovers = sent[0]!;
  const acks = received[1]!;
  return {
    offered: rate,
    sentPerSecond: discovers / seconds,
    acksPerSecond: acks / seconds,
    dropPercent: discovers > 0 ? (100 * Math.max(0, discovers - acks)) / discovers : 100,
  };
}

/**
 * Starts `server` in a fresh namespace pair and searches its ceiling (one server process for all
 * probes); with `rates`, probes exactly those offered rates instead (profiling, a quick look).
 */
export async function dhcpCeiling(
  server: DhcpServer,
  options: {
    budgetSeconds: number;
    probeSeconds: number;
    pg?: BenchPostgres;
    log?: (text: string) => void;
    rates?: readonly number[];
  },
): Promise<Ceiling> {
  const work = mkdtempSync(join(tmpdir(), `kvb-dhcp-${server}-`));
  const net = await createNamespacePair('bdhcp');
  try {
    await net.client.exec('ip', ['addr', 'add', `${GIADDR}/16`, 'dev', net.client.device]);
    await net.server.exec('ip', ['route', 'add', '10.240.0.0/16', 'via', net.client.ip]);
    let stop: () => Promise<void>;
    if (server === 'kvmfleet') stop = await startKvmfleet(net, work);
    else if (server === 'kvmfleet-pg') {
      if (!options.pg) throw new Error('kvmfleet-pg needs the bench PostgreSQL server');
      const name = await options.pg.createDatabase(`kvmfleet_${process.pid}_${Date.now() % 100000}`);
      stop = await startKvmfleet(net, work, options.pg.socketUrl(name));
    } else stop = await startKea(server, net, work, options.pg);
    const probe = async (rate: number) => {
      const result = await perfdhcp(net, rate, options.probeSeconds);
      options.log?.(
        `dhcp ${server} ${rate}/s offered: ${result.acksPerSecond.toFixed(0)} ACK/s, ${result.dropPercent.toFixed(2)} % dropped`,
      );
      await new Promise((r) => setTimeout(r, 1000)); // let the server drain its queue before the next probe
      return result;
    };
    try {
      if (options.rates) {
        const probes: Probe[] = [];
        for (const rate of options.rates) probes.push(await probe(rate));
        const passed = probes.filter((p) => p.dropPercent <= MAX_DROP_PERCENT);
        const best = passed.at(-1);
        return {
          rate: best?.offered ?? 0,
          acksPerSecond: best?.acksPerSecond ?? 0,
          clientLimited: false,
          budgetSpent: false,
          probes,
        };
      }
      return await searchCeiling(probe, { budgetMs: options.budgetSeconds * 1000 });
    } finally {
      await stop();
    }
  } finally {
    await net.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
