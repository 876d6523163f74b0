/**
 * The worker role: a bulk deploy asked of an API node that runs no worker waits queued in the
 * store; a worker node (another process on the same PostgreSQL) claims and runs it, and the API
 * node's CLI follows it to the end, and the API node's live event stream shows its progress item by item.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { cleanUpAtExit, createDirPool, ensureLibvirtd, removeDomains } from '../helpers/libvirtd.ts';
import { spawn } from 'node:child_process';
import { KVMFLEET_BIN, runCli, startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

const run = promisify(execFile);
const id = process.pid % 100000;
const POOL = `kvt-wk-${id}`;
const PREFIX = `kvt-wk-${id}-vm`;
let work: string;
let database: { url: string; drop(): Promise<void> };
let daemon: { stop(): Promise<void> };
let api: ServerProcess;
let worker: ServerProcess | undefined;
const cleanup = cleanUpAtExit([['pool-destroy', POOL]]);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-worker-'));
  await chmod(work, 0o755);
  daemon = await ensureLibvirtd();
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'base.qcow2'), '64M']);
  await createDirPool(POOL, work);
  database = await createPostgresDatabase();
  api = await startServer(['--roles', 'api', '--node-name', 'api-only', '--log-level', 'warn'], {
    KVMFLEET_DATABASE_URL: database.url,
  });
  assert.equal((await runCli(api.url, ['site', 'add', 'lab'])).code, 0);
  const hv = await runCli(api.url, [
    'hypervisor',
    'add',
    'hv1',
    '--uri',
    'qemu:///system',
    '--site',
    'lab',
    '--pool',
    POOL,
    '--domain-type',
    'qemu',
  ]);
  assert.equal(hv.code, 0, hv.stderr);
  // A template as sealing would leave it (sealing itself is tested with virt-sysprep elsewhere).
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const spec = {
    name: 'tmpl',
    type: 'qemu',
    memoryMiB: 64,
    vcpus: 1,
    disks: [{ source: join(work, 'base.qcow2'), format: 'qcow2' }],
    interfaces: [{ bridge: 'kvfnone0' }],
  };
  await client.query(
    "insert into templates (name, hypervisor_id, disk_path, memory_mib, vcpus, domain_spec) select 'tmpl', id, $1, 64, 1, $2 from hypervisors where name = 'hv1'",
    [join(work, 'base.qcow2'), JSON.stringify(spec)],
  );
  await client.end();
});

after(async () => {
  await removeDomains(PREFIX);
  await worker?.kill();
  await api?.kill();
  cleanup();
  await daemon?.stop();
  await database?.drop();
  await rm(work, { recursive: true, force: true });
});

test('a job waits queued until a worker node claims it, then runs to the end', { timeout: 120_000 }, async () => {
  const queued = await runCli(api.url, [
    '--json',
    'vm',
    'deploy',
    'tmpl',
    '--count',
    '4',
    '--prefix',
    PREFIX,
    '--site',
    'lab',
    '--no-wait',
  ]);
  assert.equal(queued.code, 0, queued.stderr);
  const jobId = JSON.parse(queued.stdout).id as number;
  assert.match(JSON.parse(queued.stdout).warning, /no worker node is alive/);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(
    JSON.parse((await runCli(api.url, ['--json', 'job', 'show', String(jobId)])).stdout).state,
    'queued',
    'no worker: nobody runs it',
  );

  // The API node's event stream (what the web console follows) hears of a job run by another process.
  const follower = spawn(process.execPath, [KVMFLEET_BIN, '--url', api.url, '--json', 'events', '--types', 'job'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let streamed = '';
  follower.stdout.on('data', (d: Buffer) => (streamed += d.toString()));
  await new Promise((r) => setTimeout(r, 1500)); // connected
  try {
    worker = await startServer(['--roles', 'worker', '--node-name', 'worker1', '--log-level', 'warn'], {
      KVMFLEET_DATABASE_URL: database.url,
    });
    const waited = await runCli(api.url, ['job', 'wait', String(jobId)]);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, new RegExp(`job ${jobId}: succeeded`));
    const ended = () =>
      streamed
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { job: number; state: string; done: number; item?: { name: string } });
    for (let i = 0; i < 50 && !ended().some((e) => e.state === 'succeeded'); i++)
      await new Promise((r) => setTimeout(r, 100));
    const events = ended().filter((e) => e.job === jobId);
    assert.deepEqual(
      events.filter((e) => e.item).map((e) => e.done),
      [1, 2, 3, 4],
      `one event per item: ${streamed}`,
    );
    assert.equal(events.at(-1)?.state, 'succeeded');
  } finally {
    follower.kill();
  }
  const defined = (await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'])).stdout
    .split('\n')
    .filter((n) => n.startsWith(PREFIX));
  assert.equal(defined.length, 4);
  const nodes = JSON.parse((await runCli(api.url, ['--json', 'nodes'])).stdout) as { name: string; roles: string[] }[];
  assert.deepEqual(nodes.find((n) => n.name === 'worker1')?.roles, ['worker']);
});
