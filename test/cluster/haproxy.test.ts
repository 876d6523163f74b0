/**
 * Clustered site: real HAProxy (Debian) in front of three kvmfleet boot HTTP nodes on one
 * PostgreSQL, configured by `kvmfleet haproxy-config` from the node registry and checked with
 * `haproxy -c`. A storm of script + Kickstart requests runs while one node is SIGKILLed: HAProxy's
 * health check (/readyz) takes it out and its retries send the requests it had to the others —
 * no request fails.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { haproxyConfig } from '../../src/cluster/haproxy.ts';
import { freePort, waitForPort } from '../helpers/sshd.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

const run = promisify(execFile);
const HOSTS = 200;
const macOf = (i: number) =>
  `52:54:00:a0:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ipOf = (i: number) => `10.70.${Math.floor((i + 10) / 250)}.${((i + 10) % 250) + 2}`;

let work: string;
let database: { url: string; drop(): Promise<void> };
let api: ServerProcess;
const boot: ServerProcess[] = [];
let haproxy: ChildProcess | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-haproxy-'));
  database = await createPostgresDatabase();
  const env = { KVMFLEET_DATABASE_URL: database.url };
  api = await startServer(['--roles', 'api', '--node-name', 'api1', '--log-level', 'warn'], env);
  const site = `sites:\n  - name: lab\n    buildCap: ${HOSTS}\n    networks:\n      - { name: lab-hv, cidr: 10.70.0.0/22, gateway: 10.70.0.1 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab:8081/trees/rhel9" }\n`;
  assert.equal((await runCli(api.url, ['import', '--kind', 'site', '-'], site)).code, 0);
  const csv = [
    'hostname,mac,ip,network,profile',
    ...Array.from({ length: HOSTS }, (_, i) => `hv${i}.lab,${macOf(i)},${ipOf(i)},lab-hv,rhel9`),
  ].join('\n');
  const imported = await runCli(api.url, ['import', '--kind', 'hosts', '-'], csv);
  assert.equal(imported.code, 0, imported.stderr);
  // The boot nodes believe X-Forwarded-For only from the balancer (HAProxy, which reaches them from 127.0.0.1).
  for (const n of [1, 2, 3])
    boot.push(
      await startServer(
        [
          '--roles',
          'http',
          '--http-listen',
          '127.0.0.1:0',
          '--node-name',
          `boot${n}`,
          '--site',
          'lab',
          '--trust-proxy',
          '127.0.0.1',
          '--log-level',
          'warn',
        ],
        env,
      ),
    );
});

after(async () => {
  haproxy?.kill('SIGKILL');
  for (const s of [...boot, api]) await s?.kill('SIGKILL');
  await database?.drop();
  await rm(work, { recursive: true, force: true });
});

test('the configuration is pure and refuses names and addresses HAProxy would misread', () => {
  const cfg = haproxyConfig([{ name: 'b1', address: '10.0.0.5:8081' }], { site: 'dc1', checkIntervalMs: 500 });
  assert.equal(cfg, haproxyConfig([{ name: 'b1', address: '10.0.0.5:8081' }], { site: 'dc1', checkIntervalMs: 500 }));
  assert.match(cfg, /server b1 10\.0\.0\.5:8081 check inter 500 fall 2 rise 2/);
  assert.match(cfg, /http-check send meth GET uri \/readyz/);
  assert.throws(
    () => haproxyConfig([{ name: 'b 1', address: '10.0.0.5:8081' }], { site: 'dc1' }),
    /cannot be an HAProxy server name/,
  );
  assert.throws(() => haproxyConfig([{ name: 'b1', address: '10.0.0.5' }], { site: 'dc1' }), /must be host:port/);
  assert.throws(() => haproxyConfig([], { site: 'dc1\nbackend x' }), /cannot be an HAProxy name/);
});

test(
  'HAProxy in front of 3 boot nodes: a node killed during a storm costs no request',
  { timeout: 120_000 },
  async () => {
    const nodes = await runCli(api.url, ['--json', 'nodes', '--site', 'lab']);
    const listed = JSON.parse(nodes.stdout) as { name: string; alive: boolean; httpAddress: string; roles: string[] }[];
    assert.deepEqual(
      listed.filter((n) => n.alive && n.roles.includes('http')).map((n) => n.name),
      ['boot1', 'boot2', 'boot3'],
    );

    const [port, statsPort] = [await freePort(), await freePort()];
    const generated = await runCli(api.url, [
      'haproxy-config',
      'lab',
      '--bind',
      `127.0.0.1:${port}`,
      '--stats',
      `127.0.0.1:${statsPort}`,
      '--check-interval',
      '300',
    ]);
    assert.equal(generated.code, 0, generated.stderr);
    for (const node of listed)
      assert.match(generated.stdout, new RegExp(`server ${node.name} ${node.httpAddress} check`));
    const file = join(work, 'haproxy.cfg');
    await writeFile(file, generated.stdout);
    await run('haproxy', ['-c', '-f', file]); // HAProxy's own check of the configuration
    haproxy = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' });
    await waitForPort(port);

    const lb = `http://127.0.0.1:${port}`;
    let requests = 0;
    const failures: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = w; !stop; i = (i + 16) % HOSTS) {
        try {
          // Machine i's address as the balancer forwards it (a MAC alone gets no install). HAProxy as
          // generated passes the header on; with `option forwardfor` it would add it itself.
          const script = await fetch(`${lb}/boot/${macOf(i)}?platform=pcbios`, {
            headers: { 'x-forwarded-for': ipOf(i) },
          });
          const text = await script.text();
          requests++;
          if (script.status !== 200) throw new Error(`script ${script.status}`);
          const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(text)?.[1];
          if (!token) throw new Error(`no Kickstart in: ${text.slice(0, 80)}`);
          const ks = await fetch(`${lb}/boot/ks/${token}`);
          await ks.text();
          requests++;
          // 403 = a newer script fetch for this host (another worker) replaced the token: not a failure of the cluster.
          if (ks.status !== 200 && ks.status !== 403) throw new Error(`kickstart ${ks.status}`);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 3000));
    const before = requests;
    await boot[1]!.kill('SIGKILL'); // boot2 dies mid-storm
    await new Promise((r) => setTimeout(r, 5000));
    const stats = await (await fetch(`http://127.0.0.1:${statsPort}/;csv`)).text();
    stop = true;
    await Promise.all(workers);
    const status = (name: string) =>
      stats
        .split('\n')
        .find((l) => l.startsWith(`lab_boot_servers,${name},`))
        ?.split(',')[17];
    assert.equal(status('boot2'), 'DOWN', 'the health check took the dead node out');
    assert.deepEqual([status('boot1'), status('boot3')], ['UP', 'UP']);
    const served = (name: string) =>
      Number(
        stats
          .split('\n')
          .find((l) => l.startsWith(`lab_boot_servers,${name},`))
          ?.split(',')[7] ?? 0,
      );
    assert.ok(served('boot1') > 0 && served('boot2') > 0 && served('boot3') > 0, 'every node served part of the storm');
    assert.ok(requests > before + 50, `the storm went on after the kill (${before} → ${requests} requests)`);
    assert.deepEqual(failures, [], `${failures.length} failed of ${requests}`);
    console.log(`# ${requests} requests through HAProxy, boot2 killed after ${before}; 0 failed`);
    haproxy.kill();
    await once(haproxy, 'exit');
  },
);

test(
  'every node failing its check (a slow store under a storm) does not empty the site: the unchecked backups serve',
  { timeout: 60_000 },
  async () => {
    // A test double of a boot node whose /readyz says 503 while it still answers boot requests.
    const { createServer } = await import('node:http');
    const node = createServer((request, response) => {
      response.writeHead(request.url === '/readyz' ? 503 : 200, { 'content-type': 'text/plain' });
      response.end(request.url === '/readyz' ? 'store unreachable' : '#!ipxe\n');
    });
    node.listen(0, '127.0.0.1');
    await once(node, 'listening');
    const nodePort = (node.address() as { port: number }).port;
    const [port, statsPort] = [await freePort(), await freePort()];
    const file = join(work, 'haproxy-unready.cfg');
    await writeFile(
      file,
      haproxyConfig([{ name: 'n1', address: `127.0.0.1:${nodePort}` }], {
        site: 'lab',
        bind: `127.0.0.1:${port}`,
        statsBind: `127.0.0.1:${statsPort}`,
        checkIntervalMs: 200,
      }),
    );
    await run('haproxy', ['-c', '-f', file]);
    const lb = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' });
    try {
      await waitForPort(port);
      const statusOf = async (name: string) =>
        (await (await fetch(`http://127.0.0.1:${statsPort}/;csv`)).text())
          .split('\n')
          .find((l) => l.startsWith(`lab_boot_servers,${name},`))
          ?.split(',')[17];
      const deadline = Date.now() + 20_000;
      while ((await statusOf('n1')) !== 'DOWN') {
        assert.ok(Date.now() < deadline, 'the check never marked the node down');
        await new Promise((r) => setTimeout(r, 200));
      }
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => (await fetch(`http://127.0.0.1:${port}/boot/52:54:00:00:00:01`)).status),
      );
      assert.deepEqual(new Set(answers), new Set([200]), 'the backups served every request');
      assert.equal(await statusOf('n1-fallback'), 'no check');
    } finally {
      lb.kill('SIGKILL');
      node.close();
    }
  },
);
