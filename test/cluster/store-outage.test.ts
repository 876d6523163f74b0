/**
 * A boot server whose store stops answering (its PostgreSQL connection runs through a forwarder
 * the test freezes with SIGSTOP) keeps answering: a built host is still sent to its disk, others
 * are told to wait and retry. When the store is back it serves normally again and reports, through
 * its heartbeat, how many scripts it answered from its cache.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort, waitForPort } from '../helpers/sshd.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';
import { httpFrom } from '../helpers/raw-http.ts';

const run = promisify(execFile);
let database: { url: string; drop(): Promise<void> };
let api: ServerProcess;
let bootNode: ServerProcess;
let forwarder: ChildProcess;
const BUILT = '52:54:00:b0:00:01';
const READY = '52:54:00:b0:00:02';

const freeze = async (signal: 'STOP' | 'CONT') => {
  await run('pkill', [`-${signal}`, '-P', String(forwarder.pid)]).catch(() => undefined);
  process.kill(forwarder.pid!, `SIG${signal}`);
};

before(async () => {
  database = await createPostgresDatabase();
  const direct = new URL(database.url);
  const port = await freePort();
  forwarder = spawn(
    'socat',
    [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:${direct.hostname}:${direct.port}`],
    { stdio: 'ignore' },
  );
  await waitForPort(port);
  const viaForwarder = new URL(database.url);
  viaForwarder.port = String(port);
  api = await startServer(['--roles', 'api', '--node-name', 'control', '--log-level', 'warn'], {
    KVMFLEET_DATABASE_URL: database.url,
  });
  const site =
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 127.90.0.0/24, gateway: 127.90.0.1 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab/trees/rhel9" }\n';
  assert.equal((await runCli(api.url, ['import', '--kind', 'site', '-'], site)).code, 0);
  for (const [name, mac, ip] of [
    ['built.lab', BUILT, '127.90.0.11'],
    ['ready.lab', READY, '127.90.0.12'],
  ]) {
    assert.equal(
      (
        await runCli(api.url, [
          'host',
          'add',
          name!,
          '--mac',
          mac!,
          '--ip',
          ip!,
          '--network',
          'lab-hv',
          '--profile',
          'rhel9',
        ])
      ).code,
      0,
    );
  }
  bootNode = await startServer(
    [
      '--roles',
      'http',
      '--http-listen',
      '127.0.0.1:0',
      '--node-name',
      'boot1',
      '--site',
      'lab',
      '--log-level',
      'error',
    ],
    { KVMFLEET_DATABASE_URL: viaForwarder.toString(), KVMFLEET_STORE_TIMEOUT_MS: '1500' },
  );
});

after(async () => {
  if (forwarder) await freeze('CONT').catch(() => undefined);
  forwarder?.kill('SIGKILL');
  await run('pkill', ['-KILL', '-P', String(forwarder?.pid)]).catch(() => undefined);
  await bootNode?.kill('SIGKILL');
  await api?.kill();
  await database?.drop();
});

test(
  'store unreachable: built hosts still boot their disk, others wait; the node reports it afterwards',
  { timeout: 90_000 },
  async () => {
    // Each machine asks from its reserved address (127.90.0.x is local on loopback): a MAC alone gets no install.
    const from: Record<string, string> = { [BUILT]: '127.90.0.11', [READY]: '127.90.0.12' };
    const script = async (mac: string) =>
      (await httpFrom(from[mac] ?? '127.0.0.1', `${bootNode.bootUrl}/boot/${mac.replace(/:/g, '-')}?platform=pcbios`))
        .body;
    // Build one host through the boot node.
    const install = await script(BUILT);
    const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(install)![1]!;
    assert.equal((await fetch(`${bootNode.bootUrl}/boot/built/${token}`, { method: 'POST' })).status, 200);
    await new Promise((r) => setTimeout(r, 500)); // the node refreshes its cache after a callback

    await freeze('STOP');
    const started = Date.now();
    const [built, ready, unknown] = await Promise.all([script(BUILT), script(READY), script('52:54:00:b0:00:99')]);
    assert.ok(Date.now() - started < 8000, `answered in ${Date.now() - started} ms`);
    assert.match(built, /built\.lab is built; booting the local disk\nsanboot --no-describe --drive 0x80/);
    assert.match(ready, /kvmfleet cannot reach its store; ready\.lab will be answered when it is back/);
    assert.match(ready, /chain --replace --autofree/);
    assert.match(unknown, /cannot reach its store; this machine will be answered/);
    await freeze('CONT');

    // Back: normal answers again, and the outage is on record in the node registry.
    let again = '';
    for (let i = 0; i < 30 && !/inst\.ks=/.test(again); i++) {
      again = await script(READY);
      if (!/inst\.ks=/.test(again)) await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(again, /inst\.ks=/, 'the ready host installs once the store answers');
    let cache: { answeredFromCache: number; storeErrors: number; lastStoreError: string } | undefined;
    for (let i = 0; i < 30 && !(cache && cache.answeredFromCache >= 3); i++) {
      const nodes = JSON.parse((await runCli(api.url, ['--json', 'nodes'])).stdout) as {
        name: string;
        detail: { cache?: typeof cache };
      }[];
      cache = nodes.find((n) => n.name === 'boot1')?.detail.cache;
      if (!(cache && cache.answeredFromCache >= 3)) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.ok(cache && cache.answeredFromCache >= 3 && cache.storeErrors >= 3, JSON.stringify(cache));
    assert.match(cache!.lastStoreError, /timeout/i);
  },
);
