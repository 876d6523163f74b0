/**
 * DHCP: perfdhcp drives 4-way exchanges (as a relay, like a router's ip-helper) at a fixed offered
 * rate against kvmfleet, Kea 2.2 (memfile, persisted) and dnsmasq, each alone in its own namespace
 * pair with the same /16 pool, for the same duration. Reported: ACKs/s and drops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespacePair, type NamespacePair } from '../test/helpers/netns.ts';
import { startServer } from '../test/helpers/server.ts';

export type DhcpPeer = 'kvmfleet' | 'kea' | 'dnsmasq';
export interface DhcpRunResult {
  acksPerSecond: number;
  dropPercent: number;
}

const GIADDR = '10.240.0.1';
const POOL = { start: '10.240.1.0', end: '10.240.255.250' };

async function startPeer(peer: DhcpPeer, net: NamespacePair, work: string): Promise<() => Promise<void>> {
  if (peer === 'kvmfleet') {
    const server = await startServer(
      [
        '--roles',
        'api,dhcp',
        '--data-dir',
        join(work, 'data'),
        '--dhcp-server-id',
        net.server.ip,
        '--log-level',
        'error',
      ],
      {},
      60_000,
      { netns: net.server.name },
    );
    const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-boot, cidr: ${net.subnet}.0/24 }\n      - { name: lab-load, cidr: 10.240.0.0/16, gateway: 10.240.0.1, dynamicRange: { start: ${POOL.start}, end: ${POOL.end} }, leaseSeconds: 3600 }\n`;
    await net.server.exec('curl', [
      '-sS',
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
      if (process.env.KVMFLEET_BENCH_DEBUG)
        console.error((await net.server.exec('curl', ['-sS', `${server.url}/api/v1/dhcp/stats`])).stdout);
      await server.kill();
    };
  }
  let child: ChildProcess;
  if (peer === 'kea') {
    const config = {
      Dhcp4: {
        'interfaces-config': { interfaces: [net.server.device], 'dhcp-socket-type': 'udp' },
        'lease-database': { type: 'memfile', persist: true, name: join(work, 'kea-leases.csv'), 'lfc-interval': 0 },
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
    child = net.server.spawn('kea-dhcp4', ['-c', join(work, 'kea.json')], {
      stdio: 'ignore',
      env: { ...process.env, KEA_PIDFILE_DIR: work, KEA_LOCKFILE_DIR: work },
    });
  } else {
    child = net.server.spawn(
      'dnsmasq',
      [
        '-d',
        '--port=0',
        '--conf-file=/dev/null',
        `--interface=${net.server.device}`,
        `--dhcp-range=${net.subnet}.10,${net.subnet}.20,3600`,
        `--dhcp-range=${POOL.start},${POOL.end},255.255.0.0,3600`,
        `--dhcp-leasefile=${join(work, 'dnsmasq.leases')}`,
        '--dhcp-lease-max=70000',
        '--dhcp-authoritative',
        '--no-ping',
        `--pid-file=${join(work, 'dnsmasq.pid')}`,
      ],
      { stdio: 'ignore' },
    );
  }
  await new Promise((r) => setTimeout(r, 1500));
  if (child.exitCode !== null) throw new Error(`${peer} did not start`);
  return async () => {
    child.kill();
    await once(child, 'exit');
  };
}

export async function dhcpRun(peer: DhcpPeer, rate: number, seconds: number): Promise<DhcpRunResult> {
  const work = mkdtempSync(join(tmpdir(), `kvb-dhcp-${peer}-`));
  const net = await createNamespacePair('bdhcp');
  try {
    await net.client.exec('ip', ['addr', 'add', `${GIADDR}/16`, 'dev', net.client.device]);
    await net.server.exec('ip', ['route', 'add', '10.240.0.0/16', 'via', net.client.ip]);
    const stop = await startPeer(peer, net, work);
    try {
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
            '60000',
            '-p',
            String(seconds),
            '-W',
            '1000000',
            net.server.ip,
          ],
          { timeoutMs: (seconds + 60) * 1000 },
        )
        .catch((e: { stdout: string }) => ({ stdout: e.stdout ?? '' }));
      if (process.env.KVMFLEET_BENCH_DEBUG) console.error(stdout);
      const sent = [...stdout.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
      const received = [...stdout.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
      if (sent.length < 2) throw new Error(`perfdhcp output not understood:\n${stdout}`);
      const acks = received[1]!;
      return { acksPerSecond: acks / seconds, dropPercent: sent[0]! > 0 ? (100 * (sent[0]! - acks)) / sent[0]! : 100 };
    } finally {
      await stop();
    }
  } finally {
    await net.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
