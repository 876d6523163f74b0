/**
 * The DHCP role in a namespace, with Debian's real clients in another: dhclient and udhcpc get the
 * reserved address of a known MAC and a pool address for an unknown one, renew, and release.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const KNOWN_MAC = '52:54:00:d4:00:01';
const UNKNOWN_MAC = '52:54:00:d4:00:99';

describe('DHCP with dhclient and udhcpc', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'kvt-dhcp-'));
  let net: NamespacePair;
  let server: ServerProcess;
  /** The API listens on the server namespace's loopback; the test reaches it through that namespace. */
  const api = async (path: string, method = 'GET', body?: string, type = 'application/json') => {
    const args = ['-sS', '-X', method, `${server.url}${path}`];
    if (body !== undefined) args.push('-H', `content-type: ${type}`, '--data-binary', body);
    const { stdout } = await net.server.exec('curl', args);
    return stdout ? JSON.parse(stdout) : undefined;
  };
  const clientIp = async () =>
    (await net.client.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', net.client.device])).stdout.match(
      /inet (\S+)\//,
    )?.[1];
  const setMac = async (mac: string) => {
    await net.client.exec('ip', ['addr', 'flush', 'dev', net.client.device]);
    await net.client.exec('ip', ['link', 'set', 'dev', net.client.device, 'address', mac]);
  };
  const leases = async () =>
    (await api('/api/v1/dhcp/stats')) as {
      sent: Record<string, number>;
      received: Record<string, number>;
      pools: { bound: number }[];
    };

  before(async () => {
    net = await createNamespacePair('dhcp', { clientAddress: false });
    server = await startServer(
      [
        '--roles',
        'api,dhcp',
        '--data-dir',
        join(work, 'data'),
        '--dhcp-server-id',
        net.server.ip,
        '--log-level',
        'warn',
      ],
      {},
      60_000,
      { netns: net.server.name },
    );
    const s = net.subnet;
    const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: ${s}.0/24, gateway: ${s}.1, dns: [${s}.1], domain: lab.example.com, dynamicRange: { start: ${s}.100, end: ${s}.199 }, leaseSeconds: 600 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://${s}.1:8081/trees/rhel9" }\n`;
    await api('/api/v1/import/site', 'POST', site, 'application/yaml');
    await api(
      '/api/v1/hosts',
      'POST',
      JSON.stringify({ hostname: 'hv1', macs: [KNOWN_MAC], ip: `${s}.50`, network: 'lab-hv', profile: 'rhel9' }),
    );
  });
  after(async () => {
    await net?.client.exec('pkill', ['-f', `udhcpc -i ${net.client.device}`]).catch(() => {});
    await server?.kill();
    await net?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  const dhclient = async (lf: string, ...extra: string[]) =>
    net.client.exec(
      'dhclient',
      [
        '-4',
        '-v',
        '-lf',
        lf,
        '-pf',
        join(work, 'dhclient.pid'),
        '-sf',
        '/sbin/dhclient-script',
        ...extra,
        net.client.device,
      ],
      { timeoutMs: 60_000 },
    );

  for (const [label, mac, expected] of [
    ['known MAC gets its reservation', KNOWN_MAC, 'reserved'],
    ['unknown MAC gets a pool address', UNKNOWN_MAC, 'pool'],
  ] as const) {
    test(`dhclient: ${label}, renews it (INIT-REBOOT) and releases it`, async () => {
      await setMac(mac);
      const lf = join(work, `dhclient-${expected}.leases`);
      writeFileSync(lf, '');
      await dhclient(lf, '-1');
      const address = await clientIp();
      if (expected === 'reserved') {
        assert.equal(address, `${net.subnet}.50`);
        assert.match(readFileSync(lf, 'utf8'), /option host-name "hv1";/);
      } else {
        const last = Number(address?.split('.')[3]);
        assert.ok(last >= 100 && last <= 199, `${address} is in the dynamic range`);
      }
      const lease = readFileSync(lf, 'utf8');
      assert.match(lease, new RegExp(`fixed-address ${address!.replace(/\./g, '\\.')};`));
      assert.match(lease, /option routers .*\.1;/);
      assert.match(lease, /option domain-name "lab.example.com";/);
      // Run again with the lease file: dhclient asks for its address back (INIT-REBOOT) and keeps it.
      const acks = (await leases()).sent.ack ?? 0;
      await net.client.exec('ip', ['addr', 'flush', 'dev', net.client.device]);
      await dhclient(lf, '-1');
      assert.equal(await clientIp(), address, 'same address again');
      assert.equal((await leases()).sent.ack, acks + 1);
      const releases = (await leases()).received.release ?? 0;
      await dhclient(lf, '-r');
      assert.equal(await clientIp(), undefined, 'address removed after release');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await leases()).received.release, releases + 1);
      const stored = ((await api('/api/v1/leases')) as { ip: string; state: string }[]).find((l) => l.ip === address);
      assert.equal(stored?.state, 'released', 'the store records the release');
    });
  }

  for (const [label, mac, expected] of [
    ['unknown MAC gets a pool address', UNKNOWN_MAC, 'pool'],
    ['known MAC gets its reservation', KNOWN_MAC, 'reserved'],
  ] as const) {
    test(`udhcpc: ${label}, renews it (unicast RENEWING) and releases it`, async () => {
      await setMac(mac);
      const child = net.client.spawn(
        'udhcpc',
        ['-i', net.client.device, '-f', '-R', '-s', '/etc/udhcpc/default.script', '-t', '5', '-T', '2'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      try {
        for (let i = 0; i < 100 && !/lease of .* obtained/.test(output); i++)
          await new Promise((r) => setTimeout(r, 100));
        const obtained = /lease of (\S+) obtained/.exec(output)?.[1];
        assert.ok(obtained, output);
        if (expected === 'reserved') assert.equal(obtained, `${net.subnet}.50`);
        else {
          const last = Number(obtained.split('.')[3]);
          assert.ok(last >= 100 && last <= 199, `${obtained} is in the dynamic range`);
        }
        assert.equal(await clientIp(), obtained);
        const before = (await leases()).sent.ack ?? 0;
        child.kill('SIGUSR1'); // renew
        for (let i = 0; i < 50 && ((await leases()).sent.ack ?? 0) === before; i++)
          await new Promise((r) => setTimeout(r, 100));
        assert.equal((await leases()).sent.ack, before + 1, 'renewal acknowledged');
        assert.equal(await clientIp(), obtained, 'same address after renewal');
        child.kill('SIGUSR2'); // release
        for (let i = 0; i < 50 && (await clientIp()) !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(await clientIp(), undefined);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await leases()).pools[0]!.bound, 0, 'no address stays bound after release');
      } finally {
        // udhcpc deconfigures the interface as it exits: wait for that before the next test.
        if (child.exitCode === null && child.signalCode === null) {
          child.kill();
          await once(child, 'exit');
        }
      }
    });
  }

  test('malformed datagrams are counted and dropped; metrics show it', async () => {
    // Paced (20 datagrams a millisecond) so the kernel's socket buffer, not the server, never drops any.
    const flood = `const s=require('dgram').createSocket('udp4');s.bind(()=>{let n=0;(function go(){for(let i=0;i<20;i++,n++)s.send(require('crypto').randomBytes(n%400),67,'${net.server.ip}');if(n<2000)setTimeout(go,1);else setTimeout(()=>s.close(),200)})()})`;
    await net.client.exec('ip', ['addr', 'add', `${net.subnet}.2/24`, 'dev', net.client.device]);
    await net.client.exec(process.execPath, ['-e', flood]);
    let metrics = '';
    let malformed = 0;
    for (let i = 0; i < 20; i++) {
      metrics = (await net.server.exec('curl', ['-sS', `${server.url}/metrics`])).stdout;
      malformed = Number(/kvmfleet_dhcp_malformed_total (\d+)/.exec(metrics)?.[1]);
      if (malformed >= 2000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(malformed >= 1900, `malformed counted: ${malformed} of 2000`);
    assert.match(metrics, /kvmfleet_dhcp_pool_size\{network="lab-hv"\} 100/);
    // What the pool keeps in memory (holds and clients remembered, bounded: test/dhcp/pool-bound.test.ts).
    const entries = Number(/kvmfleet_dhcp_pool_entries\{network="lab-hv"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(entries >= 1 && entries <= 1124, `pool entries ${entries}`);
    assert.equal(server.child.exitCode, null);
  });
});
