/**
 * HTTP boot role vs nginx on loopback, with wrk as the load:
 * - Kickstart: kvmfleet renders each one (token check, template, timeline event); nginx sends the
 *   same text as a static file — the ceiling for a dynamic answer.
 * - Install tree: both serve the same 64 MiB file from the same directory.
 * - `kvmfleet nginx-config` (cluster/nginx.ts): the generated nginx in front of the boot role serves
 *   the same file itself (vs plain nginx), and a kernel fetch through the token-checked
 *   /boot/files/TOKEN/kernel route — kvmfleet checks the token and records the fetch on the host's
 *   timeline, nginx sends the bytes (X-Accel-Redirect) — vs plain nginx sending that kernel.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nginxConfig } from '../src/cluster/nginx.ts';
import { startServer } from '../test/helpers/server.ts';

const run = promisify(execFile);

export interface HttpBenchResult {
  kickstartPerSecond: { kvmfleet: number; nginx: number };
  treeBytesPerSecond: { kvmfleet: number; nginx: number };
  /** The same tree file from the nginx of `kvmfleet nginx-config` vs from plain nginx. */
  nginxConfigTreeBytesPerSecond: { kvmfleet: number; nginx: number };
  /** An 8 MiB kernel through /boot/files/TOKEN/kernel at the generated nginx vs plain nginx's file. */
  kernelBytesPerSecond: { kvmfleet: number; nginx: number };
}

const KERNEL_BYTES = 8 << 20;

/** wrk's "Requests/sec" and "Transfer/sec" lines, as numbers. */
async function wrk(
  url: string,
  connections: number,
  seconds: number,
  headers: readonly string[] = [],
): Promise<{ requests: number; bytes: number }> {
  const { stdout } = await run(
    'wrk',
    ['-t2', `-c${connections}`, `-d${seconds}s`, ...headers.flatMap((h) => ['-H', h]), url],
    { timeout: (seconds + 30) * 1000 },
  );
  const requests = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(stdout);
  const scale = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[transfer?.[2] ?? 'B'] ?? 1;
  if (/Non-2xx or 3xx responses/.test(stdout)) throw new Error(`wrk saw non-2xx answers:\n${stdout}`);
  return { requests, bytes: Number(transfer?.[1] ?? 0) * scale };
}

/** A GET with its own Host header (fetch may not send one): the status and the body's length. */
function getWithHost(url: string, host: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { headers: { host }, agent: false }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, bytes }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

export async function httpBench(seconds = 8): Promise<HttpBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'kvb-http-'));
  const data = join(work, 'data');
  const trees = join(work, 'trees');
  mkdirSync(join(trees, 'rhel9', 'images', 'pxeboot'), { recursive: true });
  writeFileSync(join(trees, 'rhel9', 'images', 'pxeboot', 'install.img'), randomBytes(64 << 20));
  writeFileSync(join(trees, 'rhel9', 'images', 'pxeboot', 'vmlinuz'), randomBytes(KERNEL_BYTES));
  const server = await startServer([
    '--roles',
    'api,http',
    '--data-dir',
    data,
    '--http-listen',
    '127.0.0.1:0',
    '--trees-dir',
    trees,
    '--log-level',
    'error',
    '--trust-proxy',
    '127.0.0.1',
  ]);
  // A build token is handed only to the machine's own address: the bench asks as a proxy in front
  // of hv1 would (X-Forwarded-For from a trusted proxy), as a clustered site's load balancer does.
  const asHost = 'X-Forwarded-For: 10.1.0.21';
  let nginx: ReturnType<typeof spawn> | undefined;
  let generated: ReturnType<typeof spawn> | undefined;
  try {
    const api = (path: string, body: string, type: string) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
    await api(
      '/api/v1/import/site',
      'sites:\n  - name: dc1\n    networks:\n      - { name: dc1-hv, cidr: 10.1.0.0/24, gateway: 10.1.0.1, dns: [10.1.0.10], domain: dc1.example.com }\nprofiles:\n  - { name: rhel9-kvm, os: rhel9, installTreeUrl: "http://boot/trees/rhel9" }\n',
      'application/yaml',
    );
    await api(
      '/api/v1/import/hosts',
      'hostname,mac,ip,network,profile\nhv1,52:54:00:00:20:01,10.1.0.21,dc1-hv,rhel9-kvm\n',
      'text/csv',
    );
    const script = await (
      await fetch(`${server.bootUrl}/boot/52-54-00-00-20-01`, { headers: { 'x-forwarded-for': '10.1.0.21' } })
    ).text();
    const token = /\/boot\/ks\/([\w-]+)/.exec(script)?.[1];
    if (!token) throw new Error(`no token in script:\n${script}`);
    const kickstart = await (
      await fetch(`${server.bootUrl}/boot/ks/${token}`, { headers: { 'x-forwarded-for': '10.1.0.21' } })
    ).text();

    // nginx serves the same Kickstart text and the same tree, on loopback.
    const www = join(work, 'www');
    mkdirSync(www);
    writeFileSync(join(www, 'ks.cfg'), kickstart);
    const conf = join(work, 'nginx.conf');
    writeFileSync(
      conf,
      `daemon off; worker_processes auto; user root; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log;
       events { worker_connections 1024; }
       http { access_log off; sendfile on; tcp_nopush on; types { text/plain cfg; }
         client_body_temp_path ${work}/tmp; proxy_temp_path ${work}/tmp; fastcgi_temp_path ${work}/tmp; uwsgi_temp_path ${work}/tmp; scgi_temp_path ${work}/tmp;
         server { listen 127.0.0.1:18090; location /ks/ { alias ${www}/; } location /trees/ { alias ${trees}/; } } }`,
    );
    mkdirSync(join(work, 'tmp'));
    nginx = spawn('/usr/sbin/nginx', ['-c', conf, '-p', work], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 700));
    if (nginx.exitCode !== null) throw new Error('nginx did not start');

    // The nginx `kvmfleet nginx-config` writes, in front of this boot node (trusted as its proxy).
    const site = join(work, 'site-nginx');
    mkdirSync(site);
    const siteConf = join(site, 'nginx.conf');
    writeFileSync(
      siteConf,
      nginxConfig([{ name: 'boot1', address: new URL(server.bootUrl).host }], {
        site: 'bench',
        treesDir: trees,
        listen: '127.0.0.1:18091',
      }),
    );
    generated = spawn(
      '/usr/sbin/nginx',
      [
        '-p',
        site,
        '-c',
        siteConf,
        '-e',
        join(site, 'error.log'),
        '-g',
        `daemon off; user root; pid ${site}/nginx.pid;`,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 700));
    if (generated.exitCode !== null) throw new Error('the generated nginx did not start');
    // The profile's tree is http://boot/trees/rhel9: asked with that Host, kvmfleet names the file to nginx.
    const kernelPath = /\/boot\/files\/([\w-]+)\/kernel/.exec(script)?.[0];
    if (!kernelPath) throw new Error(`no kernel URL in script:\n${script}`);
    const kernelUrl = `http://127.0.0.1:18091${kernelPath}`;
    const viaAccel = await getWithHost(kernelUrl, 'boot');
    if (viaAccel.status !== 200 || viaAccel.bytes !== KERNEL_BYTES)
      throw new Error(
        `kernel through the generated nginx: ${viaAccel.status}, ${viaAccel.bytes} bytes (not X-Accel-Redirect'd?)`,
      );

    const ksK = await wrk(`${server.bootUrl}/boot/ks/${token}`, 32, seconds, [asHost]);
    const ksN = await wrk('http://127.0.0.1:18090/ks/ks.cfg', 32, seconds);
    const treeK = await wrk(`${server.bootUrl}/trees/rhel9/images/pxeboot/install.img`, 8, seconds);
    const treeN = await wrk('http://127.0.0.1:18090/trees/rhel9/images/pxeboot/install.img', 8, seconds);
    const treeG = await wrk('http://127.0.0.1:18091/trees/rhel9/images/pxeboot/install.img', 8, seconds);
    const kernelG = await wrk(kernelUrl, 8, seconds, ['Host: boot']);
    const kernelN = await wrk('http://127.0.0.1:18090/trees/rhel9/images/pxeboot/vmlinuz', 8, seconds);
    return {
      kickstartPerSecond: { kvmfleet: ksK.requests, nginx: ksN.requests },
      treeBytesPerSecond: { kvmfleet: treeK.bytes, nginx: treeN.bytes },
      nginxConfigTreeBytesPerSecond: { kvmfleet: treeG.bytes, nginx: treeN.bytes },
      kernelBytesPerSecond: { kvmfleet: kernelG.bytes, nginx: kernelN.bytes },
    };
  } finally {
    for (const child of [nginx, generated])
      if (child && child.exitCode === null) {
        child.kill('SIGQUIT');
        await once(child, 'exit');
      }
    await server.kill();
    rmSync(work, { recursive: true, force: true });
  }
}
