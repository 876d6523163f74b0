/**
 * proxyDHCP: beside an existing DHCP server (dnsmasq, on the same segment), kvmfleet answers only
 * PXE clients, with boot information and no address. The PXE client is dhclient sending PXE's
 * vendor class and architecture option; the replies are read from a capture on the client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { subOptions, text } from '../../src/protocols/dhcp4/option-codecs.ts';
import { buildClientMessage } from '../../src/protocols/dhcp4/client-message.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { encodePacket, messageType, MessageType } from '../../src/protocols/dhcp4/packet.ts';
import { createSegment, type Segment } from '../helpers/netns.ts';
import { dhcpPacketsIn } from '../helpers/pcap.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-proxy-'));
let segment: Segment;
let server: ServerProcess;
let corporate: ChildProcess;

before(async () => {
  segment = await createSegment('pxy', ['boot', 'corp', 'client'], ['boot', 'corp']);
  const { boot, corp } = segment.members;
  corporate = corp!.spawn(
    'dnsmasq',
    [
      '-d',
      '--port=0',
      '--conf-file=/dev/null',
      `--interface=${corp!.device}`,
      `--dhcp-range=${segment.subnet}.100,${segment.subnet}.150,600`,
      `--dhcp-leasefile=${join(work, 'corp.leases')}`,
      '--no-ping',
      `--pid-file=${join(work, 'corp.pid')}`,
    ],
    { stdio: 'ignore' },
  );
  server = await startServer(
    [
      '--roles',
      'api,dhcp',
      '--dhcp-mode',
      'proxy',
      '--data-dir',
      join(work, 'data'),
      '--dhcp-server-id',
      boot!.ip,
      '--log-level',
      'warn',
    ],
    {},
    60_000,
    { netns: boot!.name },
  );
  await new Promise((r) => setTimeout(r, 800));
});
after(async () => {
  corporate?.kill();
  await server?.kill();
  await segment?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

async function dhclientWithCapture(name: string, config: string, mac: string) {
  const client = segment.members.client!;
  await client.exec('ip', ['addr', 'flush', 'dev', client.device]);
  await client.exec('ip', ['link', 'set', 'dev', client.device, 'address', mac]);
  const pcap = join(work, `${name}.pcap`);
  const dump = client.spawn('tcpdump', ['-i', client.device, '-w', pcap, '-U', 'udp port 67 or udp port 68'], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 800));
  writeFileSync(join(work, `${name}.conf`), config);
  writeFileSync(join(work, `${name}.leases`), '');
  await client.exec(
    'dhclient',
    [
      '-4',
      '-1',
      '-cf',
      join(work, `${name}.conf`),
      '-lf',
      join(work, `${name}.leases`),
      '-pf',
      join(work, `${name}.pid`),
      '-sf',
      '/sbin/dhclient-script',
      client.device,
    ],
    { timeoutMs: 60_000 },
  );
  await new Promise((r) => setTimeout(r, 300));
  dump.kill('SIGINT');
  await once(dump, 'exit');
  await client
    .exec('dhclient', [
      '-4',
      '-r',
      '-cf',
      join(work, `${name}.conf`),
      '-lf',
      join(work, `${name}.leases`),
      '-pf',
      join(work, `${name}.pid`),
      '-sf',
      '/sbin/dhclient-script',
      client.device,
    ])
    .catch(() => {});
  return dhcpPacketsIn(pcap).filter((p) => p.op === 2);
}

test(
  'a PXE client gets its address from the corporate server and its boot file from kvmfleet',
  { timeout: 120_000 },
  async () => {
    const replies = await dhclientWithCapture(
      'pxe',
      'option pxe-arch code 93 = unsigned integer 16;\nsend vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";\nsend pxe-arch 0;\n',
      '52:54:00:e5:00:01',
    );
    const boot = segment.members.boot!.ip;
    const proxy = replies.find((p) =>
      p.options.get(OptionCode.ServerId)?.equals(Buffer.from(boot.split('.').map(Number))),
    );
    assert.ok(proxy, 'kvmfleet answered');
    assert.equal(messageType(proxy!), MessageType.Offer);
    assert.equal(proxy!.yiaddr, '0.0.0.0', 'no address from a proxy');
    assert.equal(proxy!.siaddr, boot);
    assert.equal(proxy!.file, 'undionly.kpxe');
    assert.equal(text.decode(proxy!.options.get(OptionCode.VendorClass)!), 'PXEClient');
    assert.deepEqual(subOptions.decode(proxy!.options.get(OptionCode.VendorSpecific)!).get(6), Buffer.from([8]));
    const corp = replies.find((p) => p.yiaddr !== '0.0.0.0');
    assert.ok(corp?.yiaddr.startsWith(`${segment.subnet}.1`), 'the address came from the corporate server');
  },
);

test('a client that is not PXE gets nothing from the proxy', { timeout: 120_000 }, async () => {
  const replies = await dhclientWithCapture('plain', '', '52:54:00:e5:00:02');
  const boot = segment.members.boot!.ip;
  assert.ok(replies.length > 0, 'the corporate server answered');
  assert.ok(
    !replies.some((p) => p.options.get(OptionCode.ServerId)?.equals(Buffer.from(boot.split('.').map(Number)))),
    'kvmfleet stayed silent',
  );
});

test('port 4011: a PXE boot-server REQUEST gets an ACK with the boot file', { timeout: 60_000 }, async () => {
  // No Debian client speaks to port 4011, so this request is built with kvmfleet's own builder.
  const client = segment.members.client!;
  await client.exec('ip', ['addr', 'add', `${segment.subnet}.77/24`, 'dev', client.device]);
  const request = encodePacket(
    buildClientMessage(MessageType.Request, {
      mac: '52:54:00:e5:00:03',
      xid: 0x4011,
      ciaddr: `${segment.subnet}.77`,
      vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
      arch: 7,
    }),
  );
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',m=>process.stdout.write(m.toString('base64'),()=>process.exit(0)));s.bind(0,()=>s.send(Buffer.from('${request.toString('base64')}','base64'),4011,'${segment.members.boot!.ip}'));setTimeout(()=>process.exit(3),5000)`;
  const { stdout } = await client.exec(process.execPath, ['-e', script]);
  const { decodePacket } = await import('../../src/protocols/dhcp4/packet.ts');
  const ack = decodePacket(Buffer.from(stdout, 'base64'));
  assert.equal(messageType(ack), MessageType.Ack);
  assert.equal(ack.file, 'ipxe.efi');
  assert.equal(ack.xid, 0x4011);
});
