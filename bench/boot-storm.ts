/**
 * Boot storm: N simulated machines of one site (bench/storm-client.ts: DHCP → TFTP → DHCP as iPXE →
 * script → Kickstart → callback) through a relay, against kvmfleet (all boot roles, embedded
 * store, N hosts in its inventory, build cap N) and against a dnsmasq (DHCP with a static host
 * per MAC, TFTP) + nginx (static per-host scripts and Kickstarts) baseline serving equivalent
 * files. Also the peak RSS of kvmfleet and of dnsmasq + nginx over the run.
 * With `files`, each machine also fetches a kernel and an initrd of those sizes (created here, random
 * bytes): from kvmfleet through the token-checked /boot/files/TOKEN/kernel|initrd, which redirects to
 * the profile's tree that kvmfleet serves itself (--trees-dir); from nginx as plain static files.
 */
import {
  appendFileSync,
  chmodSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespacePair, type NamespacePair } from '../test/helpers/netns.ts';
import { startServer } from '../test/helpers/server.ts';
import { stormMac } from './storm-macs.ts';

const GIADDR = '10.241.0.1';
const MAC_PREFIX = '02:00:00';

/** Sizes of the kernel and initrd each simulated machine fetches; without them it fetches neither. */
export interface BootFiles {
  readonly kernelBytes: number;
  readonly initrdBytes: number;
}

export interface StormResult {
  readonly seconds: number;
  readonly failures: number;
  readonly peakRssMiB: number;
  readonly errors: string[];
}

const macOf = (i: number) => stormMac(MAC_PREFIX, i);
const ipOf = (i: number) => `10.241.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`;

/** Peak resident memory (VmHWM) of a process and its descendants, in MiB. */
function peakRssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kib / 1024;
}

/** Restarts the peak count (VmHWM) of processes, so a peak is that of the storm, not of start-up (e.g. the embedded store's first initdb). */
function resetPeakRss(pids: number[]): void {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      /* gone */
    }
  }
}

function childPids(pid: number): number[] {
  try {
    const direct = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    return direct.flatMap((c) => [c, ...childPids(c)]);
  } catch {
    return [];
  }
}

/** The pxeboot kernel and initrd of a tree under `root`, filled with random bytes (1 MiB repeated). */
function writeBootFiles(root: string, files: BootFiles): void {
  const dir = join(root, 'rhel9', 'images', 'pxeboot');
  mkdirSync(dir, { recursive: true });
  const chunk = randomBytes(2 ** 20);
  for (const [name, size] of [
    ['vmlinuz', files.kernelBytes],
    ['initrd.img', files.initrdBytes],
  ] as const) {
    const fd = openSync(join(dir, name), 'w');
    for (let written = 0; written < size; written += chunk.length)
      writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
    closeSync(fd);
  }
}

async function runClients(
  net: NamespacePair,
  count: number,
  concurrency: number,
  files?: BootFiles,
): Promise<{ seconds: number; failures: number; errors: string[] }> {
  const script = join(import.meta.dirname, 'storm-client.ts');
  const bootBytes = files ? files.kernelBytes + files.initrdBytes : 0;
  const { stdout } = await net.client.exec(
    process.execPath,
    [
      '--import',
      'tsx',
      script,
      net.server.ip,
      GIADDR,
      String(count),
      String(concurrency),
      MAC_PREFIX,
      'POST',
      '0',
      String(bootBytes),
    ],
    { timeoutMs: 600_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

async function withNetwork<T>(fn: (net: NamespacePair, work: string) => Promise<T>): Promise<T> {
  const work = mkdtempSync(join(tmpdir(), 'kvb-storm-'));
  chmodSync(work, 0o755); // nginx workers read the baseline's files as an unprivileged user
  const net = await createNamespacePair('bstorm');
  try {
    await net.client.exec('ip', ['addr', 'add', `${GIADDR}/16`, 'dev', net.client.device]);
    await net.server.exec('ip', ['route', 'add', '10.241.0.0/16', 'via', net.client.ip]);
    return await fn(net, work);
  } finally {
    await net.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

export function stormKvmfleet(count: number, concurrency: number, files?: BootFiles): Promise<StormResult> {
  return withNetwork(async (net, work) => {
    const ip = net.server.ip;
    if (files) writeBootFiles(join(work, 'trees'), files);
    // KVMFLEET_BENCH_MEMORY_PROBE=FILE: the server samples where its memory is into FILE (bench/memory-probe.mjs).
    const probe = process.env.KVMFLEET_BENCH_MEMORY_PROBE;
    const probeEnv: Record<string, string> = probe
      ? {
          NODE_OPTIONS:
            `${process.env.NODE_OPTIONS ?? ''} --import ${join(import.meta.dirname, 'memory-probe.mjs')}`.trim(),
          KVMFLEET_MEMORY_PROBE: probe,
        }
      : {};
    const server = await startServer(
      [
        '--roles',
        'api,http,tftp,dhcp',
        '--data-dir',
        join(work, 'data'),
        '--dhcp-server-id',
        ip,
        '--http-listen',
        `${ip}:8081`,
        '--tftp-listen',
        `${ip}:69`,
        '--boot-base-url',
        `http://${ip}:8081`,
        ...(files ? ['--trees-dir', join(work, 'trees')] : []),
        '--log-level',
        'error',
      ],
      probeEnv,
      60_000,
      { netns: net.server.name },
    );
    try {
      const site = `sites:\n  - name: storm\n    buildCap: ${count}\n    networks:\n      - { name: storm-boot, cidr: ${net.subnet}.0/24 }\n      - { name: storm-hv, cidr: 10.241.0.0/16, gateway: ${GIADDR}, domain: storm.example.com }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://${ip}:8081/trees/rhel9" }\n`;
      await net.server.exec('curl', [
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
      const csv = [
        'hostname,mac,ip,network,profile',
        ...Array.from(
          { length: count },
          (_, i) => `hv${String(i).padStart(4, '0')}.storm.example.com,${macOf(i)},${ipOf(i)},storm-hv,rhel9`,
        ),
      ].join('\n');
      writeFileSync(join(work, 'hosts.csv'), csv);
      await net.server.exec('curl', [
        '-sS',
        '--fail-with-body',
        '-X',
        'POST',
        '-H',
        'content-type: text/csv',
        '--data-binary',
        `@${join(work, 'hosts.csv')}`,
        `${server.url}/api/v1/import/hosts`,
      ]);
      await new Promise((r) => setTimeout(r, 1500)); // the DHCP role reloads networks and reservations
      resetPeakRss([server.child.pid!, ...childPids(server.child.pid!)]);
      if (probe) appendFileSync(probe, `${JSON.stringify({ t: Date.now(), mark: 'storm starts' })}\n`);
      const result = await runClients(net, count, concurrency, files);
      const rss = peakRssMiB([server.child.pid!, ...childPids(server.child.pid!)]);
      return { ...result, peakRssMiB: rss };
    } finally {
      await server.kill();
    }
  });
}

export function stormBaseline(count: number, concurrency: number, files?: BootFiles): Promise<StormResult> {
  return withNetwork(async (net, work) => {
    const ip = net.server.ip;
    const tftp = join(work, 'tftp');
    const www = join(work, 'www');
    for (const dir of [tftp, join(www, 'boot'), join(www, 'ks')]) mkdirSync(dir, { recursive: true });
    if (files) writeBootFiles(join(www, 'trees'), files);
    copyFileSync('/usr/lib/ipxe/undionly.kpxe', join(tftp, 'undionly.kpxe'));
    const hosts: string[] = [];
    for (let i = 0; i < count; i++) {
      const mac = macOf(i);
      const hyp = mac.replace(/:/g, '-');
      hosts.push(`${mac},${ipOf(i)}`);
      // The same content kvmfleet renders, as static files.
      writeFileSync(
        join(www, 'boot', `${hyp}.ipxe`),
        `#!ipxe\nkernel http://${ip}:8082/trees/rhel9/images/pxeboot/vmlinuz initrd=initrd.img inst.ks=http://${ip}:8082/ks/${hyp}.cfg inst.repo=http://${ip}:8082/trees/rhel9 ip=dhcp\ninitrd http://${ip}:8082/trees/rhel9/images/pxeboot/initrd.img\nboot\n`,
      );
      writeFileSync(
        join(www, 'ks', `${hyp}.cfg`),
        `text\nurl --url=http://${ip}:8082/trees/rhel9\n%post\ncurl --fail -X POST http://${ip}:8082/built/${hyp}\n%end\n`,
      );
    }
    writeFileSync(join(work, 'hosts'), hosts.join('\n') + '\n');
    writeFileSync(
      join(work, 'nginx.conf'),
      `worker_processes auto;\ndaemon off;\npid ${join(work, 'nginx.pid')};\nerror_log ${join(work, 'nginx-error.log')} error;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  sendfile on;\n  server {\n    listen ${ip}:8082;\n    root ${www};\n    location /built/ { return 200 "built\\n"; }\n  }\n}\n`,
    );
    const children: ChildProcess[] = [];
    try {
      children.push(
        net.server.spawn('nginx', ['-c', join(work, 'nginx.conf'), '-e', join(work, 'nginx-error.log')], {
          stdio: 'ignore',
        }),
      );
      children.push(
        net.server.spawn(
          'dnsmasq',
          [
            '-d',
            '--port=0',
            '--conf-file=/dev/null',
            `--interface=${net.server.device}`,
            `--dhcp-range=${net.subnet}.0,static`,
            '--dhcp-range=10.241.0.0,static,255.255.0.0,3600',
            `--dhcp-hostsfile=${join(work, 'hosts')}`,
            `--dhcp-leasefile=${join(work, 'leases')}`,
            '--dhcp-authoritative',
            '--no-ping',
            '--enable-tftp',
            '--tftp-max=2000',
            `--tftp-root=${tftp}`,
            '--dhcp-userclass=set:ipxe,iPXE',
            `--dhcp-boot=tag:!ipxe,undionly.kpxe,,${ip}`,
            `--dhcp-boot=tag:ipxe,http://${ip}:8082/boot/\${mac:hexhyp}.ipxe`,
            `--pid-file=${join(work, 'dnsmasq.pid')}`,
            '--dhcp-lease-max=70000',
          ],
          { stdio: 'ignore' },
        ),
      );
      await new Promise((r) => setTimeout(r, 1500));
      for (const child of children)
        if (child.exitCode !== null) throw new Error(`${child.spawnargs.join(' ')} did not start`);
      resetPeakRss(children.flatMap((c) => [c.pid!, ...childPids(c.pid!)]));
      const result = await runClients(net, count, concurrency, files);
      const pids = children.flatMap((c) => [c.pid!, ...childPids(c.pid!)]);
      return { ...result, peakRssMiB: peakRssMiB(pids) };
    } finally {
      for (const child of children) {
        child.kill();
        if (child.exitCode === null) await once(child, 'exit');
      }
    }
  });
}
