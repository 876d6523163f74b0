/**
 * A real iPXE ROM (QEMU's virtio-net option ROM, Debian's ipxe-qemu) in a TCG guest on an isolated
 * bridge: it DHCPs from kvmfleet, is recognised as iPXE (no chainload of an iPXE binary), is given
 * its script URL, and fetches the script from the boot HTTP role. The full install is the e2e test's.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { createSegment, type Segment } from '../helpers/netns.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-qemu-'));
const GUEST_MAC = '52:54:00:f0:00:01';
let segment: Segment;
let server: ServerProcess;
let qemu: ChildProcess | undefined;

before(async () => {
  if (!existsSync('/usr/bin/qemu-system-x86_64'))
    throw new Error('qemu-system-x86 is not installed (apt-get install qemu-system-x86 ipxe-qemu)');
  segment = await createSegment('ipxe', ['boot'], ['boot']);
  const boot = segment.members.boot!;
  server = await startServer(
    [
      '--roles',
      'api,http,tftp,dhcp',
      '--data-dir',
      join(work, 'data'),
      '--dhcp-server-id',
      boot.ip,
      '--http-listen',
      '0.0.0.0:8081',
      '--tftp-listen',
      `${boot.ip}:69`,
      '--log-level',
      'warn',
    ],
    {},
    60_000,
    { netns: boot.name },
  );
  const s = segment.subnet;
  const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-boot, cidr: ${s}.0/24, gateway: ${s}.1, dynamicRange: { start: ${s}.100, end: ${s}.199 } }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://${boot.ip}:8081/trees/rhel9" }\n`;
  await boot.exec('curl', [
    '-sS',
    '-X',
    'POST',
    '-H',
    'content-type: application/yaml',
    '--data-binary',
    site,
    `${server.url}/api/v1/import/site`,
  ]);
  await boot.exec('curl', [
    '-sS',
    '-X',
    'POST',
    '-H',
    'content-type: application/json',
    '--data-binary',
    JSON.stringify({ hostname: 'guest1', macs: [GUEST_MAC], ip: `${s}.50`, network: 'lab-boot', profile: 'rhel9' }),
    `${server.url}/api/v1/hosts`,
  ]);
  // The guest's tap lives in the switch namespace, on the bridge.
  const sw = segment.bridge.namespace;
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const ip = promisify(execFile);
  await ip('ip', ['-n', sw, 'tuntap', 'add', 'dev', 'tapq', 'mode', 'tap']);
  await ip('ip', ['-n', sw, 'link', 'set', 'tapq', 'master', segment.bridge.name]);
  await ip('ip', ['-n', sw, 'link', 'set', 'tapq', 'up']);
  const { spawn } = await import('node:child_process');
  qemu = spawn(
    'ip',
    [
      'netns',
      'exec',
      sw,
      'qemu-system-x86_64',
      '-accel',
      'tcg',
      '-m',
      '256',
      '-display',
      'none',
      '-nodefaults',
      '-serial',
      `file:${join(work, 'serial.log')}`,
      '-netdev',
      'tap,id=n0,ifname=tapq,script=no,downscript=no',
      '-device',
      `virtio-net-pci,netdev=n0,mac=${GUEST_MAC}`,
      '-boot',
      'n',
    ],
    { stdio: 'ignore' },
  );
});
after(async () => {
  qemu?.kill();
  await server?.kill();
  await segment?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('the iPXE ROM gets its script URL by DHCP and fetches its script', { timeout: 180_000 }, async () => {
  const boot = segment.members.boot!;
  let timeline: { kind: string; detail: Record<string, unknown> }[] = [];
  for (let i = 0; i < 150 && !timeline.some((e) => e.kind === 'script'); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    timeline = JSON.parse((await boot.exec('curl', ['-sS', `${server.url}/api/v1/hosts/guest1/timeline`])).stdout);
  }
  const dhcp = timeline.find((e) => e.kind === 'dhcp');
  assert.ok(dhcp, `DHCP seen: ${JSON.stringify(timeline)}`);
  assert.equal(dhcp!.detail.ipxe, true, 'recognised as iPXE by its user class');
  assert.ok(
    timeline.some((e) => e.kind === 'script'),
    'fetched its iPXE script over HTTP',
  );
  assert.ok(!timeline.some((e) => e.kind === 'tftp'), 'no iPXE binary was chainloaded');
  const stats = JSON.parse((await boot.exec('curl', ['-sS', `${server.url}/api/v1/dhcp/stats`])).stdout);
  assert.ok(stats.sent.ack >= 1);
});
