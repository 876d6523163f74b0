/**
 * The VM verbs of the CLI against a real `kvmfleet serve` and a real libvirtd (qemu:///system):
 * hypervisor add, vm create/start/shutdown/destroy/undefine/list (checked against virsh), template
 * seal (refused while running; virt-sysprep on a test OS disk), vm deploy as a job with progress,
 * job show, the jobs' event stream, and clear errors for bad input.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { parseGraphics, parseNetwork, progressLine } from '../../src/cli/vm-commands.ts';
import {
  cleanUpAtExit,
  createDirPool,
  createIsolatedBridge,
  ensureLibvirtd,
  removeDomains,
} from '../helpers/libvirtd.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';
import { buildTestOsDisk } from '../helpers/test-os.ts';

const run = promisify(execFile);
const id = process.pid % 100000;
const POOL = `kvt-cli-${id}`;
const BRIDGE = `kvfcli${id}`;
const VM = `kvt-cli-${id}-vm`;
const virsh = async (...args: string[]) => (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;
cleanUpAtExit(
  [
    ['destroy', VM],
    ['undefine', VM],
    ['pool-destroy', POOL],
  ],
  [BRIDGE],
);

let work: string;
let server: ServerProcess;
let daemon: { stop(): Promise<void> };
const cli = (...args: string[]) => runCli(server.url, args);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-vmcli-'));
  await chmod(work, 0o755);
  await mkdir(join(work, 'pool'));
  await createIsolatedBridge(BRIDGE);
  daemon = await ensureLibvirtd();
  await createDirPool(POOL, join(work, 'pool'));
  await buildTestOsDisk(join(work, 'pool', 'base.qcow2'));
  await virsh('pool-refresh', POOL);
  server = await startServer(['--roles', 'api,worker', '--data-dir', join(work, 'data'), '--log-level', 'warn']);
  assert.equal((await cli('site', 'add', 'lab')).code, 0);
});

after(async () => {
  await server?.kill();
  await removeDomains(`kvt-cli-${id}`);
  await virsh('pool-destroy', POOL).catch(() => undefined);
  await run('ip', ['link', 'del', BRIDGE]).catch(() => undefined);
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

test('virt-install style options parse, or say what is wrong', () => {
  assert.deepEqual(parseGraphics('spice,password=mypassword'), { type: 'spice', password: 'mypassword' });
  assert.deepEqual(parseGraphics('vnc,listen=0.0.0.0,password=a=b'), {
    type: 'vnc',
    listen: '0.0.0.0',
    password: 'a=b',
  });
  assert.throws(() => parseGraphics('sdl'), /"sdl" is not vnc or spice/);
  assert.throws(() => parseGraphics('vnc,port=1'), /unknown option "port"/);
  assert.equal(parseNetwork('bridge:br0'), 'br0');
  assert.throws(() => parseNetwork('network=default'), /expected bridge:NAME/);
  assert.equal(progressLine(5, 1, 20, 20), '[#####...............] 5/20 (1 failed)');
  assert.equal(progressLine(20, 0, 20, 10), '[##########] 20/20');
});

test(
  'hypervisor add, vm create/start/shutdown/destroy/list as virsh shows them, template seal, deploy with progress',
  { timeout: 300_000 },
  async () => {
    const added = await cli(
      'hypervisor',
      'add',
      'hv1',
      '--uri',
      'qemu:///system',
      '--site',
      'lab',
      '--pool',
      POOL,
      '--bridge',
      BRIDGE,
      '--domain-type',
      'qemu',
    );
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /hypervisor hv1 added: \d+ CPUs, \d+ MiB, domain type qemu/);
    const bad = await cli('hypervisor', 'add', 'hv2', '--uri', 'qemu://far/system', '--site', 'lab');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /TLS is not supported.*\[KVMF_ERR_VALIDATION\]/);

    const two = await cli(
      'vm',
      'create',
      VM,
      '--hypervisor',
      'hv1',
      '--memory',
      '128',
      '--vcpus',
      '1',
      '--cdrom',
      '/x.iso',
      '--pxe',
    );
    assert.equal(two.code, 1);
    assert.match(two.stderr, /choose one install source/);
    const created = await cli(
      '--json',
      'vm',
      'create',
      VM,
      '--hypervisor',
      'hv1',
      '--memory',
      '128',
      '--vcpus',
      '1',
      '--import',
      join(work, 'pool', 'base.qcow2'),
      '--network',
      `bridge:${BRIDGE}`,
      '--graphics',
      'vnc,password=secret',
      '--no-start',
    );
    assert.equal(created.code, 0, created.stderr);
    assert.equal(JSON.parse(created.stdout).state, 'shutoff');
    const xml = await virsh('dumpxml', VM, '--security-info');
    assert.match(xml, /<graphics type='vnc' port='-1' autoport='yes' listen='127\.0\.0\.1' passwd='secret'>/);
    assert.match(xml, new RegExp(`<source bridge='${BRIDGE}'/>`));
    assert.match((await cli('vm', 'list')).stdout, new RegExp(`${VM}\\s+hv1\\s+shutoff`));

    // Start (TCG; the disk has no boot loader, so the firmware idles), seal refused while it runs,
    // an ACPI shutdown nobody answers ends in a destroy with --force.
    const started = await cli('vm', 'start', VM);
    assert.equal(started.code, 0, started.stderr);
    assert.match(await virsh('domstate', VM), /running/);
    assert.match((await cli('vm', 'list')).stdout, new RegExp(`${VM}\\s+hv1\\s+running`));
    const refused = await cli('template', 'seal', VM);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is running: only a shut-off VM can be sealed \[KVMF_ERR_VM_RUNNING\]/);
    const notUndefined = await cli('vm', 'undefine', VM);
    assert.match(notUndefined.stderr, /\[KVMF_ERR_VM_RUNNING\]/);
    const noForce = await cli('vm', 'shutdown', VM, '--timeout', '2');
    assert.equal(noForce.code, 1);
    assert.match(noForce.stderr, /did not shut down within 2 s \(use --force/);
    const forced = await cli('vm', 'shutdown', VM, '--timeout', '2', '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /did not shut down in time and was destroyed/);
    assert.match(await virsh('domstate', VM), /shut off/);
    assert.equal((await cli('vm', 'start', VM)).code, 0);
    assert.match((await cli('vm', 'destroy', VM)).stdout, new RegExp(`Domain '${VM}' destroyed`));
    assert.match(await virsh('domstate', VM), /shut off/);

    const dup = await cli('vm', 'create', VM, '--hypervisor', 'hv1', '--memory', '128', '--vcpus', '1', '--no-start');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists \[KVMF_ERR_ALREADY_EXISTS\]/);
    const sealed = await cli('template', 'seal', VM, '--name', `kvt-cli-${id}-tmpl`);
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.match(sealed.stdout, /sealed; virt-sysprep ran: .*machine-id/);
    assert.doesNotMatch(await virsh('list', '--all', '--name'), new RegExp(`^${VM}$`, 'm'));

    const deployed = await cli(
      'vm',
      'deploy',
      `kvt-cli-${id}-tmpl`,
      '--count',
      '3',
      '--prefix',
      `kvt-cli-${id}-d`,
      '--site',
      'lab',
    );
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stderr, /\[#+\] 3\/3/, 'a progress line');
    assert.match(deployed.stdout, /job \d+: succeeded, 3 ok, 0 failed/);
    const jobId = /job (\d+):/.exec(deployed.stdout)![1]!;
    const shown = await cli('--json', 'job', 'show', jobId);
    assert.equal(JSON.parse(shown.stdout).results.length, 3);
    // The job's event stream replays the end for a finished job.
    const sse = await fetch(`${server.url}/api/v1/jobs/${jobId}/events`);
    assert.equal(sse.headers.get('content-type'), 'text/event-stream');
    assert.match(await sse.text(), /event: end\ndata: \{"id":\d+,"kind":"bulk-clone","state":"succeeded"/);

    const names = (await virsh('list', '--all', '--name')).split('\n').filter((n) => n.startsWith(`kvt-cli-${id}-d-`));
    assert.deepEqual(
      names.sort(),
      [1, 2, 3].map((n) => `kvt-cli-${id}-d-00${n}`),
    );
    const one = `kvt-cli-${id}-d-001`;
    assert.match(
      (await cli('vm', 'list')).stdout,
      new RegExp(`${one}\\s+hv1\\s+shutoff\\s+128\\s+1\\s+kvt-cli-${id}-tmpl\\s+linked`),
    );
    const rmTemplate = await cli('template', 'rm', `kvt-cli-${id}-tmpl`);
    assert.equal(rmTemplate.code, 1);
    assert.match(rmTemplate.stderr, /3 linked clones.*\[KVMF_ERR_IN_USE\]/);
    for (const n of [1, 2, 3])
      assert.equal((await cli('vm', 'undefine', `kvt-cli-${id}-d-00${n}`, '--remove-all-storage')).code, 0);
    assert.equal((await cli('template', 'rm', `kvt-cli-${id}-tmpl`, '--remove-storage')).code, 0);
    assert.doesNotMatch(await virsh('vol-list', POOL), /kvt-cli-.*qcow2|base\.qcow2/);
    const missing = await cli('vm', 'start', 'no-such-vm');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /VM "no-such-vm" does not exist \[KVMF_ERR_NOT_FOUND\]/);
  },
);
