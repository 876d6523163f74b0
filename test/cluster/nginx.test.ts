/**
 * Real nginx (Debian) in front of a kvmfleet boot node, configured by `kvmfleet nginx-config` and
 * checked with `nginx -t`: nginx serves /trees/ itself (bytes, Range; no dotfiles, no symlinks, no
 * climbing out); a kernel or initrd fetch still reaches kvmfleet, which checks the token and records
 * the fetch on the host's timeline, and the bytes come from nginx through X-Accel-Redirect (the boot
 * node's own trees directory is empty, so they can come from nowhere else). The internal location
 * cannot be named from outside, and the accel mark is believed only from a trusted proxy.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { nginxConfig } from '../../src/cluster/nginx.ts';
import { waitForPort } from '../helpers/sshd.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

const run = promisify(execFile);
const MAC = '52:54:00:a1:00:01';
const IP = '10.71.0.12';
const KERNEL = randomBytes(3 * 1024 * 1024 + 17);
const INITRD = randomBytes(5 * 1024 * 1024 + 3);
const SQUASHFS = randomBytes(4 * 1024 * 1024 + 11);
const OUTSIDE = 'outside-the-tree-secret\n';

let work: string;
let prefix: string;
let port: number;
let database: { url: string; drop(): Promise<void> };
let api: ServerProcess | undefined;
let boot: ServerProcess | undefined;
let nginx: ChildProcess | undefined;

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request with the path exactly as written (fetch would resolve ../ before sending). */
function raw(
  target: number,
  path: string,
  options: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: target,
        path,
        headers: options.headers,
        localAddress: options.localAddress,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** nginx's port: a profile's installTreeUrl takes at most four digits of port (fleet/validate-names.ts). */
async function freeFourDigitPort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const candidate = 2000 + Math.floor(Math.random() * 8000);
    const probe = createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(candidate, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return candidate;
    if (attempt > 50) throw new Error('no free port in 2000-9999 on 127.0.0.1');
  }
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-nginx-'));
  await chmod(work, 0o755); // nginx's workers run as its default unprivileged user and read the tree
  const pxe = join(work, 'trees', 'rhel9', 'images', 'pxeboot');
  await mkdir(pxe, { recursive: true });
  await mkdir(join(work, 'trees', 'rhel9', 'LiveOS'));
  await writeFile(join(pxe, 'vmlinuz'), KERNEL);
  await writeFile(join(pxe, 'initrd.img'), INITRD);
  await writeFile(join(work, 'trees', 'rhel9', 'LiveOS', 'squashfs.img'), SQUASHFS);
  await writeFile(join(work, 'trees', 'rhel9', '.secret'), 'dotfile\n');
  await writeFile(join(work, 'outside.txt'), OUTSIDE);
  await symlink(join(work, 'outside.txt'), join(work, 'trees', 'rhel9', 'link.txt'));
  await mkdir(join(work, 'node-trees')); // the boot node's own: empty
  prefix = join(work, 'nginx');
  await mkdir(prefix);

  port = await freeFourDigitPort();
  database = await createPostgresDatabase();
  const env = { KVMFLEET_DATABASE_URL: database.url };
  api = await startServer(['--roles', 'api', '--node-name', 'api1', '--log-level', 'warn'], env);
  // The site first: a boot node takes its site from the registry when it announces itself.
  const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 10.71.0.0/24, gateway: 10.71.0.1 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://127.0.0.1:${port}/trees/rhel9" }\n`;
  const imported = await runCli(api.url, ['import', '--kind', 'site', '-'], site);
  assert.equal(imported.code, 0, imported.stderr);
  const csv = `hostname,mac,ip,network,profile\nhv0.lab,${MAC},${IP},lab-hv,rhel9\n`;
  const hosts = await runCli(api.url, ['import', '--kind', 'hosts', '-'], csv);
  assert.equal(hosts.code, 0, hosts.stderr);
  boot = await startServer(
    [
      '--roles',
      'http',
      '--http-listen',
      '127.0.0.1:0',
      '--node-name',
      'boot1',
      '--site',
      'lab',
      '--trees-dir',
      join(work, 'node-trees'),
      // nginx reaches the node from 127.0.0.1; the test's "outsider" connects from 127.0.0.2.
      '--trust-proxy',
      '127.0.0.1',
      '--log-level',
      'warn',
    ],
    env,
  );
});

after(async () => {
  if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
    // SIGTERM, not SIGKILL: the master stops its workers (killed outright, it would leave them running).
    const exited = once(nginx, 'exit');
    nginx.kill('SIGTERM');
    await exited;
  }
  for (const s of [boot, api]) await s?.kill('SIGKILL');
  await database?.drop();
  await rm(work, { recursive: true, force: true });
});

test('the configuration is pure and refuses values nginx would misread', () => {
  const nodes = [{ name: 'b1', address: '10.0.0.5:8081' }];
  const cfg = nginxConfig(nodes, { site: 'dc1', treesDir: '/srv/kvmfleet/trees/' });
  assert.equal(cfg, nginxConfig(nodes, { site: 'dc1', treesDir: '/srv/kvmfleet/trees/' }));
  assert.match(cfg, /server 10\.0\.0\.5:8081 max_fails=2 fail_timeout=5s; # b1/);
  assert.match(cfg, /listen \*:8081;/);
  assert.match(cfg, /location \/trees\/ \{\n\s+alias \/srv\/kvmfleet\/trees\/;/);
  assert.match(cfg, /location \/_accel\/trees\/ \{\n\s+internal;/);
  assert.match(nginxConfig([], { site: 'dc1', treesDir: '/t' }), /no live boot HTTP nodes/);
  const refused: [Parameters<typeof nginxConfig>[1], typeof nodes, RegExp][] = [
    [{ site: 'dc1', treesDir: 'trees' }, nodes, /must be an absolute path/],
    [{ site: 'dc1', treesDir: '/srv/trees; include /etc/passwd' }, nodes, /must be an absolute path/],
    [{ site: 'dc1', treesDir: '/srv/$host' }, nodes, /must be an absolute path/],
    [{ site: 'dc1', treesDir: '/srv/trees/../../etc' }, nodes, /no \. or \.\. parts/],
    [{ site: 'dc1', treesDir: '/srv/{x}' }, nodes, /must be an absolute path/],
    [{ site: 'dc1\n}', treesDir: '/t' }, nodes, /cannot be an nginx upstream name/],
    [{ site: 'dc1', treesDir: '/t', listen: '8081' }, nodes, /must be host:port/],
    [{ site: 'dc1', treesDir: '/t', listen: '0.0.0.0:99999' }, nodes, /must be host:port/],
    [{ site: 'dc1', treesDir: '/t' }, [{ name: 'b1', address: '10.0.0.5:80; x' }], /must be host:port/],
    [{ site: 'dc1', treesDir: '/t' }, [{ name: 'b 1', address: '10.0.0.5:80' }], /cannot be put in an nginx comment/],
  ];
  for (const [options, given, error] of refused) assert.throws(() => nginxConfig(given, options), error);
});

test(
  'nginx from nginx-config: trees at nginx, kernels token-checked by kvmfleet and sent by nginx',
  { timeout: 120_000 },
  async () => {
    const generated = await runCli(api!.url, [
      'nginx-config',
      'lab',
      '--listen',
      `127.0.0.1:${port}`,
      '--trees-dir',
      join(work, 'trees'),
    ]);
    assert.equal(generated.code, 0, generated.stderr);
    assert.match(generated.stdout, new RegExp(`server ${boot!.bootUrl.replace('http://', '')} .*# boot1`));
    const file = join(work, 'nginx.conf');
    await writeFile(file, generated.stdout);
    const args = ['-p', prefix, '-c', file, '-e', 'stderr'];
    const pid = `pid ${join(prefix, 'nginx.pid')};`;
    await run('nginx', [...args, '-t', '-g', pid]); // nginx's own check of the configuration
    nginx = spawn('nginx', [...args, '-g', `daemon off; ${pid}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForPort(port);
    const base = `http://127.0.0.1:${port}`;

    // A tree file: nginx's bytes, whole and by range.
    const whole = await fetch(`${base}/trees/rhel9/LiveOS/squashfs.img`);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(SQUASHFS), 'the tree file as written');
    const part = await fetch(`${base}/trees/rhel9/LiveOS/squashfs.img`, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${SQUASHFS.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(SQUASHFS.subarray(1000, 2000)));
    // The boot node itself has no such file: the bytes above were nginx's.
    assert.equal((await fetch(`${boot!.bootUrl}/trees/rhel9/LiveOS/squashfs.img`)).status, 404);

    // The machine boots through nginx (its address forwarded, as from a relay'd boot network).
    const script = await fetch(`${base}/boot/${MAC}?platform=pcbios`, { headers: { 'x-forwarded-for': IP } });
    assert.equal(script.status, 200);
    const text = await script.text();
    const kernelUrl = /(http:\S+\/boot\/files\/[A-Za-z0-9_-]+\/kernel)/.exec(text)?.[1] ?? '';
    assert.ok(kernelUrl?.startsWith(`${base}/boot/files/`), `a kernel URL at nginx in:\n${text}`);
    const initrdUrl = kernelUrl.replace(/kernel$/, 'initrd');

    const startedAt = Date.now();
    const kernel = await fetch(kernelUrl, { redirect: 'manual' });
    assert.equal(kernel.status, 200, 'sent, not redirected');
    assert.equal(kernel.headers.get('x-accel-redirect'), null, 'nginx consumed the redirect');
    assert.equal(
      kernel.headers.get('content-type'),
      'application/octet-stream',
      "the file's type, not the empty answer's",
    );
    assert.ok(Buffer.from(await kernel.arrayBuffer()).equals(KERNEL), 'the kernel from the tree');
    const initrd = await fetch(initrdUrl, { redirect: 'manual', headers: { range: 'bytes=-4096' } });
    assert.equal(initrd.status, 206, 'Range works through X-Accel-Redirect');
    assert.ok(Buffer.from(await initrd.arrayBuffer()).equals(INITRD.subarray(INITRD.length - 4096)));

    const timeline = await runCli(api!.url, ['--json', 'host', 'timeline', 'hv0.lab']);
    assert.equal(timeline.code, 0, timeline.stderr);
    const events = JSON.parse(timeline.stdout) as { at: string; kind: string }[];
    for (const kind of ['kernel', 'initrd']) {
      const event = events.find((e) => e.kind === kind);
      assert.ok(event, `a ${kind} event on the timeline: ${timeline.stdout}`);
      assert.ok(Date.parse(event.at) >= startedAt - 1000, `${kind} recorded at the fetch (${event.at})`);
    }

    // A bad token: 403 from kvmfleet, no bytes of the kernel.
    const bad = await raw(port, '/boot/files/not-a-valid-token/kernel');
    assert.equal(bad.status, 403);
    assert.equal(bad.body.toString(), 'forbidden\n');

    // The internal location cannot be named from outside, with or without tricks.
    for (const path of [
      '/_accel/trees/rhel9/images/pxeboot/vmlinuz',
      '/_accel/trees/../_accel/trees/rhel9/images/pxeboot/vmlinuz',
      '/trees/../_accel/trees/rhel9/images/pxeboot/vmlinuz',
    ]) {
      const answer = await raw(port, path);
      assert.equal(answer.status, 404, `${path} → ${answer.status}`);
      assert.ok(answer.body.length < 1024, `${path}: no kernel bytes`);
    }

    // Nothing outside the tree, no dotfiles, no symlinks, no listings.
    for (const path of [
      '/trees/../outside.txt',
      '/trees/rhel9/../../outside.txt',
      '/trees/%2e%2e/outside.txt',
      '/trees/rhel9/..%2f..%2foutside.txt',
      '/trees/rhel9/%2e%2e/%2e%2e/outside.txt',
      '/trees/rhel9/link.txt',
      '/trees/rhel9/.secret',
      '/trees/rhel9/',
    ]) {
      const answer = await raw(port, path);
      assert.ok([400, 403, 404].includes(answer.status), `${path} → ${answer.status}`);
      assert.ok(!answer.body.toString().includes('outside-the-tree-secret'), `${path} leaked the file outside`);
      assert.ok(!answer.body.toString().includes('dotfile'), `${path} served the dotfile`);
    }

    // The accel mark from anyone but a trusted proxy is ignored: the node redirects as it always did.
    const token = /\/boot\/files\/([A-Za-z0-9_-]+)\/kernel/.exec(kernelUrl)![1]!;
    const bootPort = Number(new URL(boot!.bootUrl).port);
    const headers = { host: `127.0.0.1:${port}`, 'x-kvmfleet-accel': '1', 'x-forwarded-for': IP };
    const outsider = await raw(bootPort, `/boot/files/${token}/kernel`, { headers, localAddress: '127.0.0.2' });
    assert.equal(outsider.status, 302);
    assert.equal(outsider.headers.location, `${base}/trees/rhel9/images/pxeboot/vmlinuz`);
    assert.equal(outsider.headers['x-accel-redirect'], undefined);
    // From the trusted address without the mark (HAProxy in front, say): the redirect too.
    const unmarked = await raw(bootPort, `/boot/files/${token}/kernel`, {
      headers: { host: `127.0.0.1:${port}`, 'x-forwarded-for': IP },
    });
    assert.equal(unmarked.status, 302);
    // With it, from the trusted address: the internal path and no body.
    const marked = await raw(bootPort, `/boot/files/${token}/initrd`, { headers });
    assert.equal(marked.status, 200);
    assert.equal(marked.headers['x-accel-redirect'], '/_accel/trees/rhel9/images/pxeboot/initrd.img');
    assert.equal(marked.body.length, 0);

    const exited = once(nginx, 'exit');
    nginx.kill('SIGTERM');
    await exited;
  },
);
