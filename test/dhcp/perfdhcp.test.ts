/**
 * perfdhcp (Kea's load generator, acting as a relay) against the DHCP role: sustained 4-way
 * exchanges with under 1 % drops and no address given to two clients; then a SIGKILL in the middle
 * of a run, and every lease whose ACK went on the wire is in the store after the restart.
 * ACKs are read from a tcpdump capture in the client namespace, decoded with our codec.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { once } from 'node:events';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { ackedLeases } from '../helpers/pcap.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-perfdhcp-'));
const RELAY_NET = '10.240.0.0/16';
const GIADDR = '10.240.0.1';
let net: NamespacePair;
let server: ServerProcess;
const data = join(work, 'data');

const start = () =>
  startServer(
    ['--roles', 'api,dhcp', '--data-dir', data, '--dhcp-server-id', net.server.ip, '--log-level', 'warn'],
    {},
    60_000,
    { netns: net.server.name },
  );
const api = async (path: string, method = 'GET', body?: string, type = 'application/json') => {
  const args = ['-sS', '-X', method, `${server.url}${path}`];
  if (body !== undefined) args.push('-H', `content-type: ${type}`, '--data-binary', body);
  return JSON.parse((await net.server.exec('curl', args)).stdout);
};

/** perfdhcp's two exchanges: sent, received and drops for DISCOVER-OFFER and REQUEST-ACK. */
function parsePerfdhcp(output: string): { sent: number[]; received: number[]; drops: number[] } {
  const numbers = (label: string) => [...output.matchAll(new RegExp(`${label}: (\\d+)`, 'g'))].map((m) => Number(m[1]));
  return { sent: numbers('sent packets'), received: numbers('received packets'), drops: numbers('drops') };
}

before(async () => {
  net = await createNamespacePair('perf');
  await net.client.exec('ip', ['addr', 'add', `${GIADDR}/16`, 'dev', net.client.device]);
  await net.server.exec('ip', ['route', 'add', RELAY_NET, 'via', net.client.ip]);
  server = await start();
  const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-boot, cidr: ${net.subnet}.0/24 }\n      - { name: lab-load, cidr: ${RELAY_NET}, gateway: 10.240.0.1, dynamicRange: { start: 10.240.1.0, end: 10.240.255.250 }, leaseSeconds: 3600 }\n`;
  await api('/api/v1/import/site', 'POST', site, 'application/yaml');
});
after(async () => {
  await server?.kill();
  await net?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

async function capture(file: string) {
  const child = net.client.spawn('tcpdump', ['-i', net.client.device, '-w', file, '-U', '-s', '1500', 'udp port 67'], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 800));
  return async () => {
    child.kill('SIGINT');
    await once(child, 'exit');
  };
}

test('perfdhcp: sustained 4-way exchanges, < 1 % drops, no address to two clients', { timeout: 120_000 }, async () => {
  const pcap = join(work, 'run1.pcap');
  const stop = await capture(pcap);
  const { stdout } = await net.client
    .exec('perfdhcp', ['-4', '-l', GIADDR, '-r', '200', '-R', '3000', '-p', '10', '-W', '2000000', net.server.ip], {
      timeoutMs: 60_000,
    })
    .catch((e: { stdout: string }) => ({ stdout: e.stdout }));
  await stop();
  const result = parsePerfdhcp(stdout);
  console.log(
    `# perfdhcp 200/s for 10 s: sent ${result.sent.join('/')}, received ${result.received.join('/')}, drops ${result.drops.join('/')}`,
  );
  assert.equal(result.sent.length, 2, stdout);
  for (let i = 0; i < 2; i++)
    assert.ok(
      result.drops[i]! <= result.sent[i]! * 0.01,
      `exchange ${i + 1}: ${result.drops[i]} drops of ${result.sent[i]}`,
    );
  const acks = ackedLeases(pcap);
  assert.ok(acks.length >= result.received[1]! * 0.99, `captured ${acks.length} ACKs`);
  const holder = new Map<string, string>();
  for (const { mac, ip } of acks) {
    assert.ok(!holder.has(ip) || holder.get(ip) === mac, `${ip} was given to ${holder.get(ip)} and ${mac}`);
    holder.set(ip, mac);
  }
});

test(
  'SIGKILL during a perfdhcp run: every ACKed lease is in the store after restart',
  { timeout: 120_000 },
  async () => {
    const pcap = join(work, 'run2.pcap');
    const stop = await capture(pcap);
    const load = net.client
      .exec(
        'perfdhcp',
        ['-4', '-l', GIADDR, '-r', '300', '-R', '20000', '-b', 'mac=52:54:77:00:00:00', '-p', '8', net.server.ip],
        { timeoutMs: 60_000 },
      )
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3000));
    await server.kill('SIGKILL');
    await load;
    await stop();
    const acks = ackedLeases(pcap).filter((a) => a.mac.startsWith('52:54:77'));
    assert.ok(acks.length > 100, `${acks.length} ACKs were sent before the kill`);
    server = await start();
    const leases = (await api('/api/v1/leases?network=lab-load&state=bound')) as { ip: string; mac: string }[];
    const stored = new Map(leases.map((l) => [l.ip, l.mac]));
    const missing = acks.filter((a) => stored.get(a.ip) !== a.mac);
    assert.deepEqual(missing, [], `${missing.length} of ${acks.length} ACKed leases are missing`);
    console.log(`# ${acks.length} ACKs on the wire before SIGKILL; all ${acks.length} in the store after restart`);
  },
);
