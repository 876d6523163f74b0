/**
 * A DHCP failover pair for real: two `kvmfleet serve` DHCP servers on one segment (namespaces and
 * a bridge of their own), sharing one PostgreSQL, under perfdhcp load broadcast by a client. Each
 * serves its half of the clients; the primary is SIGKILLed and the secondary takes over everyone
 * after the configured delay; the primary comes back and the pair returns to normal. Then the link
 * between them is cut (nftables drops UDP 647 both ways) until both are partner-down and both serve
 * the whole pool under load, and healed. Over the whole run (a capture of every ACK on the wire) no
 * address goes to two clients and every ACKed lease is in the store: the store's conditional
 * ownership arbitrates what the partitioned servers could not agree on. Heartbeats carry the pair's key.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createSegment, type Segment } from '../helpers/netns.ts';
import { ackedLeases } from '../helpers/pcap.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase, viaUnixSocket } from '../helpers/stores.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-failover-'));
let segment: Segment;
let database: { url: string; drop(): Promise<void> };
let capture: ChildProcess;
const servers: Record<'primary' | 'secondary', ServerProcess | undefined> = {
  primary: undefined,
  secondary: undefined,
};

interface Stats {
  sent: Record<string, number>;
  policy: { partnersClients: number };
  failover: { state: string; partnerState: string | null; ownClients: number };
}

async function start(role: 'primary' | 'secondary'): Promise<ServerProcess> {
  const me = segment.members[role]!;
  const peer = segment.members[role === 'primary' ? 'secondary' : 'primary']!;
  const server = await startServer(
    [
      '--roles',
      'api,dhcp',
      '--dhcp-server-id',
      me.ip,
      '--dhcp-failover',
      role,
      '--dhcp-peer',
      peer.ip,
      '--dhcp-failover-key-file',
      join(work, 'pair.key'),
      '--dhcp-partner-down-delay',
      '3',
      '--node-name',
      `dhcp-${role}`,
      '--log-level',
      'warn',
    ],
    { KVMFLEET_DATABASE_URL: viaUnixSocket(database.url) },
    60_000,
    { netns: me.name },
  );
  servers[role] = server;
  return server;
}

async function stats(role: 'primary' | 'secondary'): Promise<Stats> {
  const { stdout } = await segment.members[role]!.exec('curl', [
    '-sS',
    '--fail',
    `${servers[role]!.url}/api/v1/dhcp/stats`,
  ]);
  return JSON.parse(stdout) as Stats;
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** perfdhcp broadcasting from the client (as machines on the segment do): 100 distinct clients. */
async function load(seconds: number, macBase?: string): Promise<void> {
  const client = segment.members.client!;
  await client
    .exec(
      'perfdhcp',
      [
        '-4',
        '-l',
        client.device,
        '-r',
        '40',
        '-R',
        '100',
        ...(macBase ? ['-b', `mac=${macBase}`] : []),
        '-p',
        String(seconds),
        '-W',
        '1000000',
        'all',
      ],
      { timeoutMs: (seconds + 30) * 1000 },
    )
    .catch(() => undefined);
}

before(async () => {
  database = await createPostgresDatabase();
  writeFileSync(join(work, 'pair.key'), 'the pair key: 0f1e2d3c4b5a69788796a5b4c3d2e1f0\n');
  segment = await createSegment('fo', ['primary', 'secondary', 'client'], ['primary', 'secondary', 'client']);
  capture = segment.members.client!.spawn(
    'tcpdump',
    ['-i', segment.members.client!.device, '-w', join(work, 'run.pcap'), '-U', 'udp port 67 or udp port 68'],
    { stdio: 'ignore' },
  );
  await start('primary');
  const s = segment.subnet;
  const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-seg, cidr: ${s}.0/24, gateway: ${s}.1, dynamicRange: { start: ${s}.50, end: ${s}.249 }, leaseSeconds: 3600 }\n`;
  await segment.members.primary!.exec('curl', [
    '-sS',
    '--fail',
    '-X',
    'POST',
    '-H',
    'content-type: application/yaml',
    '--data-binary',
    site,
    `${servers.primary!.url}/api/v1/import/site`,
  ]);
  await start('secondary');
});

after(async () => {
  capture?.kill();
  for (const server of Object.values(servers)) await server?.kill('SIGKILL');
  await segment?.cleanup();
  await database?.drop();
  rmSync(work, { recursive: true, force: true });
});

test(
  'failover pair: split load, partner-down after the delay, back to normal; no address to two clients, no lost lease',
  { timeout: 240_000 },
  async () => {
    await waitFor(
      'both servers normal',
      20_000,
      async () =>
        (await stats('primary')).failover.state === 'normal' && (await stats('secondary')).failover.state === 'normal',
    );

    // 1. Normal: each answers its own clients and leaves the other's alone.
    await load(6);
    const [p1, s1] = [await stats('primary'), await stats('secondary')];
    assert.ok(
      p1.sent.ack! > 10 && s1.sent.ack! > 10,
      `both serve: primary ${p1.sent.ack} ACKs, secondary ${s1.sent.ack}`,
    );
    assert.ok(p1.policy.partnersClients > 0 && s1.policy.partnersClients > 0, "each left the other's clients alone");

    // 2. The primary dies: after the silence and the delay the secondary serves everyone.
    await servers.primary!.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(
      'secondary in partner-down',
      20_000,
      async () => (await stats('secondary')).failover.state === 'partner-down',
    );
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs >= 3000, `not before the configured delay (${tookMs} ms)`);
    const before = (await stats('secondary')).sent.ack!;
    await load(5);
    const during = await stats('secondary');
    assert.ok(
      during.sent.ack! - before >= 100,
      `the secondary alone answered ${during.sent.ack! - before} ACKs for 100 clients`,
    );

    // 3. The primary returns: it waits until the secondary stands down, then both are normal again.
    await start('primary');
    await waitFor(
      'both normal again',
      20_000,
      async () =>
        (await stats('primary')).failover.state === 'normal' && (await stats('secondary')).failover.state === 'normal',
    );
    await load(4);
    assert.ok((await stats('primary')).sent.ack! > 10, 'the primary serves its clients again');

    // 4. A partition: the heartbeat link is cut both ways; both end in partner-down and serve everyone.
    const cut = async (on: boolean) => {
      for (const role of ['primary', 'secondary'] as const) {
        const ns = segment.members[role]!;
        await ns.exec('nft', ['flush', 'ruleset']);
        if (!on) continue;
        await ns.exec('nft', ['add', 'table', 'inet', 'kvtcut']);
        for (const hook of ['input', 'output']) {
          await ns.exec('nft', ['add', 'chain', 'inet', 'kvtcut', hook, `{ type filter hook ${hook} priority 0; }`]);
          await ns.exec('nft', ['add', 'rule', 'inet', 'kvtcut', hook, 'udp', 'dport', '647', 'drop']);
        }
      }
    };
    await cut(true);
    await waitFor(
      'both partner-down',
      30_000,
      async () =>
        (await stats('primary')).failover.state === 'partner-down' &&
        (await stats('secondary')).failover.state === 'partner-down',
    );
    const [pBefore, sBefore] = [(await stats('primary')).sent.ack!, (await stats('secondary')).sent.ack!];
    // 100 new clients: both servers offer them free addresses from the whole pool, the same ones —
    // only one binding of each can win in the store; the loser NAKs and its client starts over.
    await load(5, '52:54:99:00:00:00');
    const [pDuring, sDuring] = [(await stats('primary')).sent.ack!, (await stats('secondary')).sent.ack!];
    assert.ok(
      pDuring > pBefore && sDuring > sBefore,
      `both allocated while partitioned (primary +${pDuring - pBefore}, secondary +${sDuring - sBefore})`,
    );
    await cut(false);
    await waitFor(
      'both normal after the partition heals',
      30_000,
      async () =>
        (await stats('primary')).failover.state === 'normal' && (await stats('secondary')).failover.state === 'normal',
    );
    await load(3);

    // The whole run, from the wire and from the store.
    capture.kill();
    await once(capture, 'exit');
    const acked = ackedLeases(join(work, 'run.pcap'));
    assert.ok(acked.length > 300, `${acked.length} ACKs captured`);
    const holder = new Map<string, string>();
    for (const { ip, mac } of acked) {
      assert.ok(!holder.has(ip) || holder.get(ip) === mac, `${ip} was given to ${holder.get(ip)} and ${mac}`);
      holder.set(ip, mac);
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query<{ ip: string; mac: string }>(
      "select host(ip) as ip, mac from leases where state = 'bound'",
    );
    await client.end();
    const stored = new Map(rows.map((r) => [r.ip, r.mac]));
    for (const [ip, mac] of holder) assert.equal(stored.get(ip), mac, `ACKed lease ${ip} → ${mac} is in the store`);
    console.log(`# ${acked.length} ACKs, ${holder.size} leases; secondary took over ${tookMs} ms after the kill`);
  },
);
