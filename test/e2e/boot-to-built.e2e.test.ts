/**
 * End to end: real guests network-boot from kvmfleet to "built", then boot from their disk.
 *
 * kvmfleet (api, boot HTTP, TFTP and DHCP roles, embedded store) runs in a namespace of its own; the
 * guests are libvirt TCG guests on qemu:///system, plugged into an isolated bridge that a veth pair
 * joins to that namespace. The installer is a test double (see installer-double.ts): Debian's cloud
 * kernel with a busybox initramfs that fetches the Kickstart, writes a bootable disk image from the
 * install tree, runs the Kickstart's %post (the callback) and reboots.
 *
 * Scenario (issue #5): (1) a BIOS and a UEFI guest install and are built, an unknown one is
 * discovered; (2) power-on again boots the disk; (3) `kvmfleet host rebuild` installs again;
 * (4) with a site cap of 1, two guests booting at once are built one after the other.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { LibvirtClient } from '../../src/protocols/libvirt/remote.ts';
import { ensureLibvirtd, LIBVIRT_SOCKET } from '../helpers/libvirtd.ts';
import { KVMFLEET_BIN, startServer, type ServerProcess } from '../helpers/server.ts';
import { buildDiskImage, DISK_MARKER } from './disk-image.ts';
import { Guests, type Guest } from './guests.ts';
import { buildInstallerInitramfs, findCloudKernel, TREE_DISK_IMAGE } from './installer-double.ts';
import { createLab, labLeftovers, type Lab } from './lab.ts';
import { failpoint } from '../helpers/failpoint.ts';

const run = promisify(execFile);
const PREFIX = `kvfe2e-${process.pid % 100000}-`;
const INSTALL_DONE = /kvmfleet-installer-double: install complete/;
const DISK_BOOTED = new RegExp(DISK_MARKER);

interface TimelineEvent {
  at: string;
  kind: string;
  detail: Record<string, unknown>;
}

let work: string;
let lab: Lab;
let server: ServerProcess;
let daemon: { stop(): Promise<void> };
let client: LibvirtClient;
let guests: Guests;
let bios: Guest;
let uefi: Guest;
let stranger: Guest;

/** Creates (or, run again, updates) the lab site, its network and the install profile. */
async function importSite(kernelArgs: string): Promise<void> {
  const [s, ip] = [lab.subnet, lab.serverIp];
  const site = [
    'sites:',
    '  - name: lab',
    '    buildCap: 10',
    '    networks:',
    `      - { name: lab-boot, cidr: ${s}.0/24, gateway: ${s}.1, dns: [${s}.1], domain: e2e.example.com, dynamicRange: { start: ${s}.100, end: ${s}.199 } }`,
    'profiles:',
    `  - { name: e2e-double, os: rhel9, installTreeUrl: "http://${ip}:8081/trees/e2e", kernelArgs: "${kernelArgs}" }`,
    '',
  ].join('\n');
  await lab.exec('curl', [
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
}

/** The API, from inside kvmfleet's namespace (where its loopback listener is). */
async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const args = ['-sS', '--fail-with-body', '-X', method, `${server.url}${path}`];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  const { stdout } = await lab.exec('curl', args);
  return JSON.parse(stdout) as T;
}

const timeline = (host: string) => api<TimelineEvent[]>('GET', `/api/v1/hosts/${host}/timeline`);
const kinds = (events: TimelineEvent[]) => events.map((e) => e.kind);

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** The kinds of a timeline in order, checking that `expected` appears as a subsequence. */
function assertInOrder(events: TimelineEvent[], expected: string[], label: string): void {
  let at = 0;
  for (const kind of kinds(events)) if (kind === expected[at]) at++;
  assert.equal(
    at,
    expected.length,
    `${label}: expected ${expected.join(' → ')} in order, timeline was ${kinds(events).join(' → ')}`,
  );
}

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await lab.exec(process.execPath, [KVMFLEET_BIN, '--url', server.url, ...args]);
  return stdout;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-e2e-'));
  await chmod(work, 0o755); // QEMU runs as libvirt-qemu and opens the disks and logs here
  lab = await createLab();
  daemon = await ensureLibvirtd();
  client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, 'qemu:///system');
  guests = new Guests(client, work, lab.bridge);

  // The install tree: the kernel, the installer double as initrd, the disk image it writes.
  const kernel = await findCloudKernel();
  const tree = join(work, 'trees', 'e2e');
  await mkdir(join(tree, 'images', 'pxeboot'), { recursive: true });
  await mkdir(join(tree, 'kvmfleet-test'), { recursive: true });
  await copyFile(kernel.vmlinuz, join(tree, 'images/pxeboot/vmlinuz'));
  await writeFile(join(tree, 'images/pxeboot/initrd.img'), await buildInstallerInitramfs(kernel));
  await writeFile(join(tree, TREE_DISK_IMAGE), await buildDiskImage());

  const ip = lab.serverIp;
  server = await startServer(
    [
      '--roles',
      'api,http,tftp,dhcp',
      '--data-dir',
      join(work, 'data'),
      '--trees-dir',
      join(work, 'trees'),
      '--dhcp-server-id',
      ip,
      '--http-listen',
      `${ip}:8081`,
      '--tftp-listen',
      `${ip}:69`,
      '--retry-seconds',
      '5',
      '--log-level',
      'warn',
    ],
    {},
    60_000,
    { netns: lab.namespace },
  );
  await importSite('console=ttyS0,115200 panic=-1');
  bios = await guests.define(`${PREFIX}bios`, '52:54:00:e2:00:01', 'bios');
  uefi = await guests.define(`${PREFIX}uefi`, '52:54:00:e2:00:02', 'uefi');
  stranger = await guests.define(`${PREFIX}stranger`, '52:54:00:e2:00:99', 'bios');
  for (const [g, n] of [
    [bios, 11],
    [uefi, 12],
  ] as const) {
    await api('POST', '/api/v1/hosts', {
      hostname: g.name,
      macs: [g.mac],
      ip: `${lab.subnet}.${n}`,
      network: 'lab-boot',
      profile: 'e2e-double',
    });
  }
});

/** Serial consoles and the server's output are kept here after every run (CI can archive it). */
const ARTIFACTS = join(tmpdir(), 'kvmfleet-e2e-artifacts');

after(async () => {
  await guests?.saveSerialLogs(ARTIFACTS);
  if (server) await writeFile(join(ARTIFACTS, 'kvmfleet.log'), server.lines.join('\n') + '\n').catch(() => {});
  console.log(`# serial consoles and server log: ${ARTIFACTS}`);
  await guests?.removeAll();
  await client?.close();
  await daemon?.stop();
  await server?.kill();
  await lab?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

test(
  '1. a BIOS and a UEFI guest install from the network and are built; an unknown one is discovered',
  { timeout: 600_000 },
  async () => {
    await Promise.all([guests.powerOn(bios), guests.powerOn(uefi), guests.powerOn(stranger)]);
    failpoint('boot:guests-booting');
    await Promise.all([bios, uefi].map((g) => guests.waitForSerial(g, INSTALL_DONE, 540_000)));
    // After the callback the installer reboots; the disk is first in the order and now boots.
    await Promise.all([bios, uefi].map((g) => guests.waitForSerial(g, DISK_BOOTED, 120_000)));

    for (const g of [bios, uefi]) {
      const host = await api<{ buildState: string; ip: string }>('GET', `/api/v1/hosts/${g.name}`);
      assert.equal(host.buildState, 'built', `${g.name} is built`);
      const events = await timeline(g.name);
      const start = kinds(events).indexOf('build-started');
      assert.ok(start >= 0, `${g.name} was admitted: ${kinds(events).join(' → ')}`);
      // Admission runs while the script request is answered: build-started comes just before "script".
      assertInOrder(events, ['dhcp', 'build-started', 'script', 'kernel', 'initrd', 'kickstart', 'built'], g.name);
      assert.equal(events.find((e) => e.kind === 'script')!.detail.action, 'install');
      const serial = await guests.serial(g);
      assert.match(serial, /kvmfleet-installer-double: fetched the Kickstart/);
      assert.match(serial, /kvmfleet-installer-double: wrote the disk image from the install tree/);
      assert.match(serial, /systemctl \(shim\): skipped: systemctl enable libvirtd/, "the Kickstart's %post ran");
    }

    // BIOS: the NIC's iPXE ROM is iPXE already, so DHCP hands it the script URL (no binary by TFTP).
    const biosEvents = await timeline(bios.name);
    assert.equal(biosEvents.find((e) => e.kind === 'dhcp')!.detail.ipxe, true);
    assert.ok(!biosEvents.some((e) => e.kind === 'tftp'), 'an iPXE ROM is not sent an iPXE binary');
    // UEFI: OVMF's own PXE client asks first (arch 7, not iPXE), fetches ipxe.efi by TFTP, and that iPXE asks for the script.
    const uefiEvents = await timeline(uefi.name);
    const firstDhcp = uefiEvents.find((e) => e.kind === 'dhcp')!;
    assert.deepEqual([firstDhcp.detail.firmware, firstDhcp.detail.ipxe], ['efi-x64', false]);
    const tftp = uefiEvents.filter(
      (e) => e.kind === 'tftp' && e.detail.file === 'ipxe.efi' && e.detail.outcome === 'completed',
    );
    assert.ok(
      tftp.length >= 1,
      `ipxe.efi fetched by TFTP: ${JSON.stringify(uefiEvents.filter((e) => e.kind === 'tftp'))}`,
    );
    assertInOrder(uefiEvents, ['dhcp', 'tftp', 'dhcp', 'script', 'kernel'], uefi.name);
    assert.ok(
      uefiEvents.some((e) => e.kind === 'dhcp' && e.detail.ipxe === true),
      'the chainloaded iPXE asked again as iPXE',
    );

    // Leases: each built guest holds its reserved address.
    const leases = await api<{ ip: string; mac: string; state: string }[]>('GET', '/api/v1/leases');
    for (const [g, n] of [
      [bios, 11],
      [uefi, 12],
    ] as const) {
      assert.ok(
        leases.some((l) => l.mac === g.mac && l.ip === `${lab.subnet}.${n}`),
        `${g.name} leased ${lab.subnet}.${n}: ${JSON.stringify(leases)}`,
      );
    }

    // The unknown MAC was registered as discovered (and waits in iPXE to be adopted).
    const discovered = `discovered-${stranger.mac.replace(/:/g, '')}`;
    const strangerHost = await waitFor('the unknown guest to be discovered', 120_000, async () => {
      try {
        return await api<{ buildState: string }>('GET', `/api/v1/hosts/${discovered}`);
      } catch {
        return undefined;
      }
    });
    assert.equal(strangerHost.buildState, 'discovered');
    await guests.powerOff(stranger);
  },
);

test(
  '2. on the next power-on the built guests boot from their disk: no kernel is fetched',
  { timeout: 300_000 },
  async () => {
    const before = new Map<string, number>();
    for (const g of [bios, uefi]) {
      await guests.powerOff(g);
      before.set(g.name, (await timeline(g.name)).length);
    }
    const offsets = new Map<string, number>();
    for (const g of [bios, uefi]) offsets.set(g.name, (await guests.serial(g)).length);
    await Promise.all([bios, uefi].map((g) => guests.powerOn(g)));
    await Promise.all([bios, uefi].map((g) => guests.waitForSerial(g, DISK_BOOTED, 180_000, offsets.get(g.name))));
    for (const g of [bios, uefi]) {
      const fresh = (await timeline(g.name)).slice(before.get(g.name));
      assert.ok(
        !fresh.some((e) => ['kernel', 'initrd', 'kickstart', 'build-started'].includes(e.kind)),
        `${g.name}: nothing fetched: ${kinds(fresh).join(' ')}`,
      );
      // Had it booted from the network, its script would send it to the disk too.
      const { stdout } = await lab.exec('curl', [
        '-sS',
        '--fail-with-body',
        `${server.url}/api/v1/hosts/${g.name}/boot-script?platform=${g.firmware === 'bios' ? 'pcbios' : 'efi'}`,
      ]);
      assert.match(stdout, g.firmware === 'bios' ? /sanboot --no-describe --drive 0x80/ : /^exit$/m);
      await guests.powerOff(g);
    }
  },
);

test('3. `kvmfleet host rebuild` makes a guest install again', { timeout: 420_000 }, async () => {
  const out = await cli('host', 'rebuild', bios.name);
  assert.match(out, new RegExp(bios.name));
  assert.equal((await api<{ buildState: string }>('GET', `/api/v1/hosts/${bios.name}`)).buildState, 'ready');
  const seen = (await timeline(bios.name)).length;
  const offset = (await guests.serial(bios)).length;
  // The disk comes first and is bootable, so the operator forces one network boot (a BMC's "bootdev pxe").
  await guests.powerOnFromNetworkOnce(bios);
  await guests.waitForSerial(bios, INSTALL_DONE, 360_000, offset);
  // This power cycle still has the network first: after the install it asks kvmfleet, is told
  // nothing to boot (it is built), and the firmware goes on to the disk.
  await guests.waitForSerial(bios, new RegExp(`${INSTALL_DONE.source}[\\s\\S]*${DISK_MARKER}`), 180_000, offset);
  const fresh = (await timeline(bios.name)).slice(seen);
  assertInOrder(fresh, ['build-started', 'kernel', 'initrd', 'kickstart', 'built', 'dhcp'], 'rebuild');
  const afterBuilt = fresh.slice(kinds(fresh).lastIndexOf('built'));
  assert.ok(
    !afterBuilt.some((e) => ['script', 'kernel'].includes(e.kind)),
    `after the build it was sent to its disk: ${kinds(afterBuilt).join(' ')}`,
  );
  assert.equal((await api<{ buildState: string }>('GET', `/api/v1/hosts/${bios.name}`)).buildState, 'built');
  await guests.powerOff(bios);
});

test(
  '4. with a site cap of 1, two guests booting at once are built one after the other',
  { timeout: 720_000 },
  async () => {
    // Installs here take seconds; a real one takes many minutes. Holding each for a while makes the
    // two builds contend for the one slot whichever guest asks first.
    await importSite('console=ttyS0,115200 panic=-1 kvmfleet.test.hold=45');
    await cli('site', 'set', 'lab', '--cap', '1'); // after the import, which sets the cap the site file names
    const seen = new Map<string, number>();
    const offsets = new Map<string, number>();
    for (const g of [bios, uefi]) {
      await cli('host', 'rebuild', g.name);
      seen.set(g.name, (await timeline(g.name)).length);
      offsets.set(g.name, (await guests.serial(g)).length);
    }
    await Promise.all([bios, uefi].map((g) => guests.powerOnFromNetworkOnce(g)));
    await Promise.all([bios, uefi].map((g) => guests.waitForSerial(g, INSTALL_DONE, 660_000, offsets.get(g.name))));

    const runs = await Promise.all(
      [bios, uefi].map(async (g) => {
        const fresh = (await timeline(g.name)).slice(seen.get(g.name));
        const started = fresh.find((e) => e.kind === 'build-started');
        const built = fresh.find((e) => e.kind === 'built');
        assert.ok(started && built, `${g.name} built again: ${kinds(fresh).join(' ')}`);
        return { name: g.name, fresh, started: Date.parse(started!.at), built: Date.parse(built!.at) };
      }),
    );
    runs.sort((a, b) => a.started - b.started);
    const [first, second] = runs as [(typeof runs)[0], (typeof runs)[0]];
    assert.ok(
      second.started >= first.built,
      `builds overlapped: ${first.name} ${new Date(first.started).toISOString()}–${new Date(first.built).toISOString()}, ${second.name} started ${new Date(second.started).toISOString()}`,
    );
    const story = runs
      .map((r) => `${r.name}: ${r.fresh.map((e) => `${e.kind}@${e.at.slice(11, 19)}`).join(' ')}`)
      .join('\n');
    assert.ok(
      second.fresh.some((e) => e.kind === 'queued'),
      `${second.name} was queued while ${first.name} built:\n${story}`,
    );
    assert.ok(
      second.fresh.some((e) => e.kind === 'script' && e.detail.reason === 'queued'),
      'the waiting guest was told to wait by its script',
    );
    for (const g of [bios, uefi]) await guests.powerOff(g);
  },
);

test('5. the lab leaves nothing behind: no guest, namespace or bridge', { timeout: 120_000 }, async () => {
  await guests.saveSerialLogs(ARTIFACTS);
  await guests.removeAll();
  assert.deepEqual(await guests.leftovers(PREFIX), []);
  const { stdout } = await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name']);
  assert.ok(!stdout.includes(PREFIX), stdout);
  await server.kill();
  await lab.cleanup();
  assert.deepEqual(await labLeftovers(lab), []);
});
