/**
 * End to end through the BMC (issue #21): a powered-off machine is powered on by kvmfleet over IPMI,
 * network-boots, installs and is built; `host rebuild --power-cycle` reinstalls it. No human, and
 * no libvirt call from the test changes the guest once it is registered — only kvmfleet's IPMI
 * client does, through the BMC.
 *
 * The lab is boot-to-built's (lab.ts: kvmfleet's api, http, tftp and dhcp roles in a namespace on an
 * isolated bridge; libvirt TCG guests, boot order disk then network; the installer test double).
 * The BMCs are real ipmi_sim processes (Debian's openipmi) on a management network of their own
 * (bmc-network.ts), one per guest, whose chassis control starts, stops and resets the guest and
 * sets its next boot device (test/bmc/chassis-libvirt.ts). kvmfleet reaches them from its namespace.
 *
 * Scenario: (1) registered through the CLI (`host add`, `host set --bmc-… --bmc-password-stdin`),
 * `host power on` → installed, built, timeline complete, its disk boots; (2) `host rebuild
 * --power-cycle` → next boot PXE once, power cycle, installed again (a second build), built;
 * (3) `site power-on` of four more machines with a site cap of 1 and no margin: each is powered on
 * only once the one before is built; `site power-off` then turns them off (soft, then hard).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { LibvirtClient } from '../../src/protocols/libvirt/remote.ts';
import { powerChanges } from '../bmc/chassis-libvirt.ts';
import type { IpmiSim } from '../bmc/ipmi-sim.ts';
import { failpoint } from '../helpers/failpoint.ts';
import { ensureLibvirtd, LIBVIRT_SOCKET } from '../helpers/libvirtd.ts';
import { KVMFLEET_BIN, startServer, type ServerProcess } from '../helpers/server.ts';
import { bmcNetworkLeftovers, createBmcNetwork, type BmcNetwork } from './bmc-network.ts';
import { buildDiskImage, DISK_MARKER } from './disk-image.ts';
import { Guests, type Guest } from './guests.ts';
import { buildInstallerInitramfs, findCloudKernel, TREE_DISK_IMAGE } from './installer-double.ts';
import { createLab, labLeftovers, type Lab } from './lab.ts';

const run = promisify(execFile);
const PREFIX = `kvfe2e-${process.pid % 100000}-`;
const INSTALL_DONE = /kvmfleet-installer-double: install complete/;
const DISK_BOOTED = new RegExp(DISK_MARKER);
const ARTIFACTS = join(tmpdir(), 'kvmfleet-e2e-artifacts');
/** Install timeline, in order (admission runs while the script request is answered). */
const BUILD_CHAIN = ['dhcp', 'build-started', 'script', 'kernel', 'initrd', 'kickstart', 'built'];

interface TimelineEvent {
  at: string;
  kind: string;
  detail: Record<string, unknown>;
}

let work: string;
let lab: Lab;
let bmcNet: BmcNetwork;
let server: ServerProcess;
let daemon: { stop(): Promise<void> };
let client: LibvirtClient;
let guests: Guests;
let machine: Guest;
let bmc: IpmiSim;

/** Runs one step of a scenario with its own deadline; a failure names the step. */
async function step<T>(name: string, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([body(), deadline]);
  } catch (error) {
    throw new Error(`step "${name}" failed: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
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
const buildState = async (host: string) =>
  (await api<{ buildState: string }>('GET', `/api/v1/hosts/${host}`)).buildState;

function assertInOrder(events: TimelineEvent[], expected: string[], label: string): void {
  let at = 0;
  for (const kind of kinds(events)) if (kind === expected[at]) at++;
  assert.equal(
    at,
    expected.length,
    `${label}: expected ${expected.join(' → ')} in order, timeline was ${kinds(events).join(' → ')}`,
  );
}

/** The CLI in kvmfleet's namespace, as an operator runs it; `input` is its standard input. */
async function cli(args: string[], input = ''): Promise<string> {
  const child = spawn(
    'ip',
    ['netns', 'exec', lab.namespace, process.execPath, KVMFLEET_BIN, '--url', server.url, ...args],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`kvmfleet ${args.join(' ')} exited ${code}: ${stderr.trim() || stdout.trim()}`);
  return stdout;
}

/** Read-only looks at the guest (the test never changes it through libvirt once kvmfleet has it). */
const virsh = async (...args: string[]) => (await run('virsh', ['-q', '-c', 'qemu:///system', ...args])).stdout.trim();
const domainState = (g: Guest) => virsh('domstate', g.name);
const storedBootOrder = async (g: Guest) =>
  [...(await virsh('dumpxml', '--inactive', g.name)).matchAll(/<(disk|interface) [\s\S]*?<boot order='(\d)'\/>/g)]
    .sort((a, b) => Number(a[2]) - Number(b[2]))
    .map((m) => m[1]);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-power-e2e-'));
  await chmod(work, 0o755); // QEMU runs as libvirt-qemu and opens the disks and logs here
  lab = await createLab();
  bmcNet = await createBmcNetwork(lab);
  daemon = await ensureLibvirtd();
  client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, 'qemu:///system');
  guests = new Guests(client, work, lab.bridge);

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
      'api,http,tftp,dhcp,worker', // worker: site power jobs and the power poller
      '--data-dir',
      join(work, 'data'), // BMC passwords are sealed under the key file kvmfleet creates here
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
      'info',
    ],
    {},
    60_000,
    { netns: lab.namespace },
  );
  const s = lab.subnet;
  await cli(['site', 'add', 'lab', '--cap', '10']);
  await cli([
    'network',
    'add',
    'lab-boot',
    '--site',
    'lab',
    '--cidr',
    `${s}.0/24`,
    '--gateway',
    `${s}.1`,
    '--dns',
    `${s}.1`,
    '--domain',
    'e2e.example.com',
    '--range',
    `${s}.100-${s}.199`,
  ]);
  await cli([
    'profile',
    'add',
    'e2e-double',
    '--os',
    'rhel9',
    '--tree',
    `http://${ip}:8081/trees/e2e`,
    '--kernel-args',
    'console=ttyS0,115200 panic=-1',
  ]);
  // Off, disk first then network, a blank disk: a machine just racked.
  machine = await guests.define(`${PREFIX}pw-bios`, '52:54:00:e2:01:01', 'bios');
  bmc = await bmcNet.addBmc(1, machine.name, { username: 'admin', password: `Bmc-${process.pid}-pw1` });
});

/** Serial consoles, the server's log and each BMC's own output, chassis requests and power changes. */
async function saveArtifacts(): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await guests?.saveSerialLogs(ARTIFACTS);
  if (server) await writeFile(join(ARTIFACTS, 'power-boot.kvmfleet.log'), server.lines.join('\n') + '\n');
  for (const [i, sim] of (bmcNet?.bmcs ?? []).entries()) {
    const changes = powerChanges(sim.dir).map((c) => `${new Date(c.atMs).toISOString()} ${c.change}`);
    const lines = [`# ipmi_sim ${sim.host}:${sim.port}`, ...sim.output, '# chassis requests', ...sim.record()];
    await writeFile(
      join(ARTIFACTS, `power-boot.bmc${i + 1}.log`),
      [...lines, '# power changes', ...changes].join('\n') + '\n',
    );
  }
  console.log(`# serial consoles, server and BMC logs: ${ARTIFACTS}`);
}

let tornDown = false;
/** Stops and removes everything this file started; goes on past a failing part. */
async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  const quietly = async (what: string, body: () => Promise<unknown> | undefined) => {
    try {
      await body();
    } catch (error) {
      console.log(`# teardown: ${what}: ${(error as Error).message}`);
    }
  };
  await quietly('artifacts', saveArtifacts);
  await quietly('guests', () => guests?.removeAll());
  await quietly('libvirt client', () => client?.close());
  await quietly('libvirtd', () => daemon?.stop());
  await quietly('server', () => server?.kill());
  await quietly('BMCs', () => bmcNet?.cleanup());
  await quietly('lab', () => lab?.cleanup());
  if (work) await rm(work, { recursive: true, force: true });
}

after(teardown);

test(
  '1. registered with its BMC through the CLI, a powered-off machine is powered on by kvmfleet over IPMI, network-boots, installs and is built',
  { timeout: 780_000 },
  async () => {
    const name = machine.name;
    const password = bmc.password;
    await step('register the host and its BMC through the CLI', 60_000, async () => {
      await cli([
        'host',
        'add',
        name,
        '--mac',
        machine.mac,
        '--ip',
        `${lab.subnet}.21`,
        '--network',
        'lab-boot',
        '--profile',
        'e2e-double',
      ]);
      const set = await cli(
        [
          'host',
          'set',
          name,
          '--bmc-type',
          'ipmi',
          '--bmc-address',
          `${bmc.host}:${bmc.port}`,
          '--bmc-user',
          bmc.username,
          '--bmc-password-stdin',
        ],
        `${password}\n`,
      );
      assert.match(set, /BMC ipmi 10\.79\.0\.11:623, user admin, password set/);
      const shown = await cli(['--json', 'host', 'bmc', name]);
      assert.equal(JSON.parse(shown).passwordSet, true);
      assert.ok(!shown.includes(password), 'the password is never shown');
    });
    await step('the BMC reports the machine off', 60_000, async () => {
      assert.equal(await domainState(machine), 'shut off');
      assert.match(await cli(['host', 'power', name, 'status']), /Chassis Power is off/);
    });

    const offset = (await guests.serial(machine)).length;
    await step('kvmfleet host power on', 60_000, async () => {
      const out = await cli(['host', 'power', name, 'on']);
      assert.match(out, new RegExp(`host ${name}: sent on, power is on`));
      // From here on only kvmfleet (through the BMC) changes the guest.
      assert.equal(await domainState(machine), 'running');
      assert.ok(bmc.record().includes('power 1'), `ipmi_sim asked the chassis to power on: ${bmc.record().join(', ')}`);
    });
    failpoint('power:guest-booting');
    await step('the guest network-boots and the installer double completes', 600_000, () =>
      guests.waitForSerial(machine, INSTALL_DONE, 600_000, offset),
    );
    // The installer reboots; disk first, and the disk is now installed.
    await step('after the install the guest boots its disk', 180_000, () =>
      guests.waitForSerial(machine, new RegExp(`${INSTALL_DONE.source}[\\s\\S]*${DISK_MARKER}`), 180_000, offset),
    );
    await step('the host is built and its timeline complete', 60_000, async () => {
      assert.equal(await buildState(name), 'built');
      const events = await timeline(name);
      assertInOrder(events, BUILD_CHAIN, name);
      assert.equal(kinds(events).filter((k) => k === 'build-started').length, 1, 'one build');
      assert.equal(events.find((e) => e.kind === 'script')!.detail.action, 'install');
      const serial = await guests.serial(machine);
      assert.match(serial, /kvmfleet-installer-double: fetched the Kickstart/);
      assert.match(serial, /systemctl \(shim\): skipped: systemctl enable libvirtd/, "the Kickstart's %post ran");
      assert.match(await cli(['host', 'power', name, 'status']), /Chassis Power is on/);
    });
    await step('the BMC password is in no log, answer or audit entry', 30_000, async () => {
      assert.ok(!server.lines.join('\n').includes(password), 'not in the server log');
      const audit = await lab.exec('curl', ['-sS', '--fail-with-body', `${server.url}/api/v1/audit?limit=200`]);
      assert.match(audit.stdout, /bmc power on/, 'the power-on is audited');
      assert.ok(!audit.stdout.includes(password), 'not in the audit log');
    });
  },
);

test(
  '2. `kvmfleet host rebuild --power-cycle`: next boot PXE once, power cycle by IPMI, installed again and built',
  { timeout: 780_000 },
  async () => {
    const name = machine.name;
    const seen = (await timeline(name)).length;
    const offset = (await guests.serial(machine)).length;
    const recorded = bmc.record().length;
    const qemuBefore = await virsh('domid', machine.name);
    assert.deepEqual(await storedBootOrder(machine), ['disk', 'interface'], 'disk first, as racked');

    await step('kvmfleet host rebuild --power-cycle', 90_000, async () => {
      const out = await cli(['host', 'rebuild', name, '--power-cycle']);
      assert.match(out, new RegExp(`host ${name} will be rebuilt: next boot pxe \\(once\\), sent cycle`));
    });
    await step('the BMC set the next boot to PXE and cycled the power: a new QEMU process', 60_000, async () => {
      await waitFor('the guest running again after the cycle', 30_000, async () =>
        (await domainState(machine)) === 'running' && (await virsh('domid', machine.name)) !== qemuBefore
          ? true
          : undefined,
      );
      const asked = bmc.record().slice(recorded);
      assertInOrder(
        asked.map((kind) => ({ kind, at: '', detail: {} })),
        ['boot pxe', 'power 0', 'power 1'],
        'chassis requests',
      );
      // Once: the stored definition is back to disk first; only this power-on boots the network first.
      assert.deepEqual(await storedBootOrder(machine), ['disk', 'interface']);
    });
    await step('the guest network-boots and installs again', 600_000, () =>
      guests.waitForSerial(machine, INSTALL_DONE, 600_000, offset),
    );
    // Its reboot keeps this power-on's order (network first): kvmfleet now tells it to boot its disk.
    await step('after the second install the guest boots its disk', 180_000, () =>
      guests.waitForSerial(machine, new RegExp(`${INSTALL_DONE.source}[\\s\\S]*${DISK_MARKER}`), 180_000, offset),
    );
    await step('the host is built again: a second build in its timeline', 60_000, async () => {
      assert.equal(await buildState(name), 'built');
      const events = await timeline(name);
      const fresh = events.slice(seen);
      assertInOrder(fresh, ['rebuild-requested', ...BUILD_CHAIN], 'rebuild');
      assert.equal(kinds(events).filter((k) => k === 'build-started').length, 2, 'build count 2');
      assert.equal(kinds(events).filter((k) => k === 'built').length, 2);
      const afterBuilt = fresh.slice(kinds(fresh).lastIndexOf('built'));
      assert.ok(
        !afterBuilt.some((e) => ['kernel', 'initrd'].includes(e.kind)),
        `after the build it was sent to its disk: ${kinds(afterBuilt).join(' ')}`,
      );
      const changes = powerChanges(bmc.dir).map((c) => c.change);
      assert.deepEqual(changes, ['on', 'off', 'on'], 'power on, then the cycle: off and on');
    });
    await step('kvmfleet host power off', 60_000, async () => {
      assert.match(await cli(['host', 'power', name, 'off']), /sent off, power is off/);
      assert.equal(await domainState(machine), 'shut off');
    });
  },
);

test(
  '3. `site power-on` with a site cap of 1 powers the ready guests on one at a time, as build slots free; all are built; site power-off turns them off',
  { timeout: 1_200_000 },
  async () => {
    const group: { guest: Guest; sim: IpmiSim }[] = [];
    await step('four more racked machines, off, registered with their BMCs through the CLI', 120_000, async () => {
      for (const n of [1, 2, 3, 4]) {
        const guest = await guests.define(`${PREFIX}pw-site${n}`, `52:54:00:e2:01:1${n}`, 'bios');
        const sim = await bmcNet.addBmc(1 + n, guest.name, { username: 'admin', password: `Bmc-${process.pid}-s${n}` });
        await cli([
          'host',
          'add',
          guest.name,
          '--mac',
          guest.mac,
          '--ip',
          `${lab.subnet}.3${n}`,
          '--network',
          'lab-boot',
          '--profile',
          'e2e-double',
        ]);
        await cli(
          [
            'host',
            'set',
            guest.name,
            '--bmc-type',
            'ipmi',
            '--bmc-address',
            `${sim.host}:${sim.port}`,
            '--bmc-user',
            sim.username,
            '--bmc-password-stdin',
          ],
          `${sim.password}\n`,
        );
        group.push({ guest, sim });
      }
      await cli(['site', 'set', 'lab', '--cap', '1']);
    });
    // The job is followed here (with this step's deadlines), not by the CLI's own wait.
    const job = await step(
      'kvmfleet site power-on lab --margin 0 (no machine waits beyond the free slots)',
      60_000,
      async () =>
        JSON.parse(await cli(['--json', 'site', 'power-on', 'lab', '--margin', '0', '--no-wait'])) as {
          id: number;
          total: number;
          warning?: string;
        },
    );
    // Only the ready hosts: the first machine is built and stays off.
    assert.equal(job.total, group.length, JSON.stringify(job));
    assert.equal(job.warning, undefined, 'a worker runs the job');
    type JobView = { state: string; results: { name: string; ok: boolean; code?: string }[] };
    const jobNow = () => api<JobView>('GET', `/api/v1/jobs/${job.id}`);
    await step('a worker takes the job', 75_000, () =>
      waitFor(`a worker to take job ${job.id} (does the worker role run site power jobs?)`, 60_000, async () =>
        (await jobNow()).state !== 'queued' ? true : undefined,
      ),
    );
    const finished = await step('the job powers every host on and ends', 900_000, () =>
      waitFor(`job ${job.id} to end`, 900_000, async () => {
        const now = await jobNow();
        return ['queued', 'running'].includes(now.state) ? undefined : now;
      }),
    );
    assert.equal(finished.state, 'succeeded', JSON.stringify(finished));
    assert.deepEqual(finished.results.map((r) => [r.name, r.ok]).sort(), group.map((g) => [g.guest.name, true]).sort());
    await step('every machine installs and is built', 600_000, () =>
      waitFor('all four built', 600_000, async () => {
        const states = await Promise.all(group.map((g) => buildState(g.guest.name)));
        return states.every((state) => state === 'built') ? true : undefined;
      }),
    );
    await step('one at a time: each power-on and build after the one before was built', 60_000, async () => {
      const runs = await Promise.all(
        group.map(async ({ guest, sim }) => {
          const events = await timeline(guest.name);
          assertInOrder(events, BUILD_CHAIN, guest.name);
          const at = (kind: string) => Date.parse(events.find((e) => e.kind === kind)!.at);
          const ons = powerChanges(sim.dir).filter((c) => c.change === 'on');
          assert.equal(ons.length, 1, `${guest.name} powered on once: ${JSON.stringify(ons)}`);
          return { name: guest.name, on: ons[0]!.atMs, started: at('build-started'), built: at('built') };
        }),
      );
      runs.sort((a, b) => a.on - b.on);
      const story = runs
        .map(
          (r) =>
            `${r.name}: on ${new Date(r.on).toISOString()}, build ${new Date(r.started).toISOString()}–${new Date(r.built).toISOString()}`,
        )
        .join('\n');
      for (let i = 1; i < runs.length; i++) {
        const [before, next] = [runs[i - 1]!, runs[i]!];
        assert.ok(next.on >= before.built, `${next.name} was powered on before ${before.name} was built:\n${story}`);
        assert.ok(next.started >= before.built, `builds overlapped:\n${story}`);
      }
      console.log(`# site power-on, cap 1:\n${story.replace(/^/gm, '#   ')}`);
    });
    await step(
      'kvmfleet site power-off lab --soft-timeout 5: soft, then hard for machines that ignore ACPI',
      180_000,
      async () => {
        // The installed "disk" halts in its boot code, so no ACPI shutdown is heard; the first machine is off already.
        const done = JSON.parse(await cli(['--json', 'site', 'power-off', 'lab', '--soft-timeout', '5'])) as {
          state: string;
          results: { name: string; ok: boolean; detail?: string }[];
        };
        assert.equal(done.state, 'succeeded', JSON.stringify(done));
        const detail = new Map(done.results.map((r) => [r.name, r.detail]));
        assert.equal(detail.get(machine.name), 'was off');
        for (const { guest } of group) {
          assert.match(detail.get(guest.name) ?? '', /^hard after 5 s/, guest.name);
          assert.equal(await domainState(guest), 'shut off');
        }
      },
    );
  },
);

test('4. the run leaves nothing behind: no guest, BMC, namespace or bridge', { timeout: 120_000 }, async () => {
  const simDirs = bmcNet.bmcs.map((sim) => sim.dir);
  await teardown();
  const domains = await virsh('list', '--all', '--name'); // libvirt's own view (the client is closed)
  assert.ok(!domains.includes(PREFIX), `guests left: ${domains}`);
  assert.deepEqual(await bmcNetworkLeftovers(bmcNet), []);
  const { stdout } = await run('pgrep', ['-a', 'ipmi_sim']).catch(() => ({ stdout: '' }));
  for (const dir of simDirs) assert.ok(!stdout.includes(dir), `an ipmi_sim of this run is still running: ${stdout}`);
  assert.deepEqual(await labLeftovers(lab), []);
});
