/**
 * The DHCP role in a namespace, with Debian's real clients in another: dhclient and udhcpc get the
 * reserved address of a known MAC and a pool address for an unknown one, renew, and release.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const clientIp = async () => (await net.client.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', net.client.device])).stdout.match(/inet (\S+)\//)?.[1];
  const setMac = async (mac: string) => {
    await net.client.exec('ip', ['addr', 'flush', 'dev', net.client.device]);
    await net.client.exec('ip', ['link', 'set', 'dev', net.client.device, 'address', mac]);
  };
  const leases = async () => (await api('/api/v1/dhcp/stats')) as { sent: Record<string, number>; received: Record<string, number>; pools: { bound: number }[] };

  before(async () => {
    net = await createNamespacePair('dhcp', { clientAddress: false });
    server = await startServer(
      ['--roles', 'api,dhcp', '--data-dir', join(work, 'data'), '--dhcp-server-id', net.server.ip, '--log-level', 'warn'],
      {},
      60_000,
      { netns: net.server.name },
    );
    const s = net.subnet;
    const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: ${s}.0/24, gateway: ${s}.1, dns: [${s}.1], domain: lab.example.com, dynamicRange: { start: ${s}.100, end: ${s}.199 }, leaseSeconds: 600 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://${s}.1:8081/trees/rhel9" }\n`;
    await api('/api/v1/import/site', 'POST', site, 'application/yaml');
    await api('/api/v1/hosts', 'POST', JSON.stringify({ hostname: 'hv1', macs: [KNOWN_MAC], ip: `${s}.50`, network: 'lab-hv', profile: 'rhel9' }));
  });
  after(async () => {
    await net?.client.exec('pkill', ['-f', `udhcpc -i ${net.client.device}`]).catch(() => {});
    await server?.kill();
    await net?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test('dhclient: known MAC gets its reservation, then releases it', async () => {
    await setMac(KNOWN_MAC);
    const lf = join(work, 'dhclient.leases');
    writeFileSync(lf, '');
    const dh = ['-4', '-1', '-v', '-lf', lf, '-pf', join(work, 'dhclient.pid'), '-sf', '/sbin/dhclient-script', net.client.device];
    await net.client.exec('dhclient', dh, { timeoutMs: 60_000 });
    assert.equal(await clientIp(), `${net.subnet}.50`);
    const lease = readFileSync(lf, 'utf8');
    assert.match(lease, new RegExp(`fixed-address ${net.subnet}\\.50;`));
    assert.match(lease, /option routers .*\.1;/);
    assert.match(lease, /option domain-name "lab.example.com";/);
    assert.match(lease, /option host-name "hv1";/);
    await net.client.exec('dhclient', ['-4', '-r', '-v', '-lf', lf, '-pf', join(work, 'dhclient.pid'), '-sf', '/sbin/dhclient-script', net.client.device], { timeoutMs: 30_000 });
    assert.equal(await clientIp(), undefined, 'address removed after release');
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(((await leases()).received.release ?? 0) >= 1);
  });

  test('udhcpc: unknown MAC gets a pool address, renews (unicast) and releases', async () => {
    await setMac(UNKNOWN_MAC);
    const child = net.client.spawn('udhcpc', ['-i', net.client.device, '-f', '-R', '-s', '/etc/udhcpc/default.script', '-t', '5', '-T', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    try {
      for (let i = 0; i < 100 && !/lease of .* obtained/.test(output); i++) await new Promise((r) => setTimeout(r, 100));
      const obtained = /lease of (\S+) obtained/.exec(output)?.[1];
      assert.ok(obtained, output);
      const last = Number(obtained.split('.')[3]);
      assert.ok(last >= 100 && last <= 199, `${obtained} is in the dynamic range`);
      assert.equal(await clientIp(), obtained);
      const before = (await leases()).sent.ack ?? 0;
      child.kill('SIGUSR1'); // renew
      for (let i = 0; i < 50 && ((await leases()).sent.ack ?? 0) === before; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await leases()).sent.ack, before + 1, 'renewal acknowledged');
      assert.equal(await clientIp(), obtained, 'same address after renewal');
      child.kill('SIGUSR2'); // release
      for (let i = 0; i < 50 && (await clientIp()) !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await clientIp(), undefined);
      await new Promise((r) => setTimeout(r, 300));
      const pool = (await leases()).pools[0]!;
      assert.equal(pool.bound, 0, 'released lease is free again');
    } finally {
      child.kill();
    }
  });

  test('malformed datagrams are counted and dropped; metrics show it', async () => {
    const flood = `const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);let n=0;(function go(){for(let i=0;i<200;i++,n++)s.send(require('crypto').randomBytes(n%400),67,'${net.server.ip}');if(n<5000)setImmediate(go);else setTimeout(()=>s.close(),200)})()})`;
    await net.client.exec('ip', ['addr', 'add', `${net.subnet}.2/24`, 'dev', net.client.device]);
    await net.client.exec(process.execPath, ['-e', flood]);
    const { stdout } = await net.server.exec('curl', ['-sS', `${server.url}/metrics`]);
    const malformed = Number(/kvmfleet_dhcp_malformed_total (\d+)/.exec(stdout)?.[1]);
    assert.ok(malformed > 4000, `malformed counted: ${malformed}`);
    assert.match(stdout, /kvmfleet_dhcp_pool_size\{network="lab-hv"\} 100/);
    assert.equal(server.child.exitCode, null);
  });
});
