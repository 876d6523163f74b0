/**
 * Example.com on one machine, with one command: three sites of 500 hypervisors each on one
 * PostgreSQL, every site with both topologies of the seed —
 *   clustered:   relayed hypervisor networks → a DHCP failover pair; two boot servers behind HAProxy;
 *   distributed: one network served by a boot node of its own (`--networks`).
 * Each site is a set of network namespaces joined by an isolated bridge (nothing leaves the machine).
 * With --storm, every host of every site boots at once (simulated firmware → iPXE → installer:
 * bench/storm-client.ts) and the summary says how many were built and how long it took.
 *
 *   sudo npx tsx deploy/example-enterprise/run.ts [--hosts-per-site 500] [--storm] [--keep]
 *
 * Needs root, PostgreSQL's server binaries, HAProxy and iproute2 (deploy/debian-packages.txt installs them).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createSegment, type Segment } from '../../test/helpers/netns.ts';
import { startServer, runCli, type ServerProcess } from '../../test/helpers/server.ts';
import { stormMac } from '../../bench/storm-macs.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    'hosts-per-site': { type: 'string', default: '500' },
    storm: { type: 'boolean' },
    keep: { type: 'boolean' },
  },
});
const HOSTS = Number(values['hosts-per-site']);
const SITES = ['dc1', 'dc2', 'dc3'];
const say = (text: string) => console.error(`example: ${text}`);

const work = mkdtempSync(join(tmpdir(), 'kvmfleet-example-'));
const children: ChildProcess[] = [];
const servers: ServerProcess[] = [];
const segments: Segment[] = [];
let pgStop: (() => Promise<void>) | undefined;

async function startPostgres(): Promise<string> {
  const bin = readdirSync('/usr/lib/postgresql')
    .sort()
    .map((v) => `/usr/lib/postgresql/${v}/bin`)
    .filter((d) => existsSync(`${d}/initdb`))
    .at(-1);
  if (!bin) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  const dir = join(work, 'pg');
  const port = 20000 + Math.floor(Math.random() * 20000);
  await run('chmod', ['0755', work]); // the postgres user reaches its directory through it
  await run('mkdir', ['-p', dir]);
  await run('chown', ['postgres:', dir]);
  const asPg = (cmd: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
  await asPg(`${bin}/initdb`, ['-D', `${dir}/data`, '-U', 'kvmfleet', '--auth=trust', '-E', 'UTF8']);
  await asPg(`${bin}/pg_ctl`, [
    '-D',
    `${dir}/data`,
    '-l',
    `${dir}/log`,
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off`,
    'start',
  ]);
  pgStop = async () =>
    void (await asPg(`${bin}/pg_ctl`, ['-D', `${dir}/data`, '-m', 'immediate', 'stop']).catch(() => undefined));
  // Through the unix socket: servers inside namespaces have a loopback of their own.
  return `postgres://kvmfleet@localhost:${port}/postgres?host=${encodeURIComponent(dir)}`;
}

interface SiteLab {
  readonly name: string;
  readonly segment: Segment;
  readonly distributed: Segment;
  readonly relayNet: string; // 10.(100+i) — the relayed hypervisor networks live in this /16
  /** Hosts 0 … half-1 are on network a, half … clustered-1 on b, the rest on the distributed network. */
  readonly half: number;
  readonly clustered: number;
}

/** The storm client's MAC scheme, one prefix per site (02:01:00, 02:02:00, …). */
const sitePrefix = (site: number) => `02:0${site + 1}:00`;
const macOf = (site: number, i: number) => stormMac(sitePrefix(site), i);

async function main(): Promise<void> {
  const database = await startPostgres();
  say(`PostgreSQL up (${work}/pg)`);
  const control = await startServer(['--roles', 'api', '--node-name', 'control', '--log-level', 'warn'], {
    KVMFLEET_DATABASE_URL: database,
  });
  servers.push(control);
  say(`control plane API ${control.url}`);

  // Per site: a clustered segment (DHCP pair, two boot servers, HAProxy, the routers' relay) and a distributed one.
  const labs: SiteLab[] = [];
  for (const [i, name] of SITES.entries()) {
    const clustered = await createSegment(
      `${name}c`,
      ['dhcp1', 'dhcp2', 'boot1', 'boot2', 'lb', 'relay'],
      ['dhcp1', 'dhcp2', 'boot1', 'boot2', 'lb', 'relay'],
    );
    const distributed = await createSegment(`${name}d`, ['node', 'machines'], ['node', 'machines']);
    segments.push(clustered, distributed);
    const relayNet = `10.${100 + i}`;
    // The relay (a router's ip helper) owns the hypervisor networks; the servers route them to it.
    const relay = clustered.members.relay!;
    for (let n = 0; n < 2; n++)
      await relay.exec('ip', ['addr', 'add', `${relayNet}.${n * 4}.1/22`, 'dev', relay.device]);
    for (const member of ['dhcp1', 'dhcp2', 'boot1', 'boot2', 'lb'])
      await clustered.members[member]!.exec('ip', ['route', 'add', `${relayNet}.0.0/16`, 'via', relay.ip]);
    const inClusters = Math.round(HOSTS * 0.8);
    labs.push({
      name,
      segment: clustered,
      distributed,
      relayNet,
      half: Math.floor(inClusters / 2),
      clustered: inClusters,
    });
  }

  const yaml = ['sites:'];
  for (const lab of labs) {
    const c = lab.segment.subnet;
    const d = lab.distributed.subnet;
    yaml.push(
      `  - name: ${lab.name}`,
      `    buildCap: ${HOSTS}`,
      '    networks:',
      `      - { name: ${lab.name}-boot, cidr: ${c}.0/24 }`,
      `      - { name: ${lab.name}-hv-a, cidr: ${lab.relayNet}.0.0/22, gateway: ${lab.relayNet}.0.1, relays: [${lab.relayNet}.0.1], domain: ${lab.name}.example.com }`,
      `      - { name: ${lab.name}-hv-b, cidr: ${lab.relayNet}.4.0/22, gateway: ${lab.relayNet}.4.1, relays: [${lab.relayNet}.4.1], domain: ${lab.name}.example.com }`,
      `      - { name: ${lab.name}-dist, cidr: ${d}.0/24, gateway: ${d}.254, domain: ${lab.name}.example.com }`,
    );
  }
  yaml.push(
    'profiles:',
    '  - { name: rhel9-kvm, os: rhel9, installTreeUrl: "http://install.example.com/trees/rhel9" }',
    '',
  );
  writeFileSync(join(work, 'sites.yaml'), yaml.join('\n'));
  const imported = await runCli(control.url, ['import', join(work, 'sites.yaml')]);
  if (imported.code !== 0) throw new Error(imported.stderr);
  const csv = ['hostname,mac,ip,network,profile'];
  labs.forEach((lab, s) => {
    for (let i = 0; i < HOSTS; i++) {
      const [network, ip] =
        i < lab.half
          ? [`${lab.name}-hv-a`, `${lab.relayNet}.${Math.floor(i / 250)}.${(i % 250) + 2}`]
          : i < lab.clustered
            ? [
                `${lab.name}-hv-b`,
                `${lab.relayNet}.${4 + Math.floor((i - lab.half) / 250)}.${((i - lab.half) % 250) + 2}`,
              ]
            : [`${lab.name}-dist`, `${lab.distributed.subnet}.${((i - lab.clustered) % 240) + 10}`];
      csv.push(`hv${String(i).padStart(4, '0')}.${lab.name}.example.com,${macOf(s, i)},${ip},${network},rhel9-kvm`);
    }
  });
  writeFileSync(join(work, 'hosts.csv'), csv.join('\n') + '\n');
  const hosts = await runCli(control.url, ['import', join(work, 'hosts.csv')]);
  if (hosts.code !== 0) throw new Error(hosts.stderr);
  say(`inventory: ${SITES.length} sites, ${SITES.length * HOSTS} hosts`);

  const env = { KVMFLEET_DATABASE_URL: database };
  // The DHCP pairs authenticate their heartbeats with a shared secret.
  const pairKey = join(work, 'dhcp-pair.key');
  writeFileSync(pairKey, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  for (const lab of labs) {
    const m = lab.segment.members;
    // Two stateless boot servers, then HAProxy in front of them, configured from the node registry.
    for (const b of ['boot1', 'boot2'])
      servers.push(
        await startServer(
          [
            '--roles',
            'http,tftp',
            '--http-listen',
            `${m[b]!.ip}:8081`,
            '--tftp-listen',
            `${m[b]!.ip}:69`,
            '--node-name',
            `${lab.name}-${b}`,
            '--site',
            lab.name,
            '--trust-proxy',
            m.lb!.ip,
            '--log-level',
            'error',
          ],
          env,
          60_000,
          { netns: m[b]!.name },
        ),
      );
    const cfg = await runCli(control.url, [
      'haproxy-config',
      lab.name,
      '--bind',
      `${m.lb!.ip}:8081`,
      '--check-interval',
      '1000',
    ]);
    writeFileSync(join(work, `${lab.name}-haproxy.cfg`), cfg.stdout);
    await run('haproxy', ['-c', '-f', join(work, `${lab.name}-haproxy.cfg`)]);
    children.push(m.lb!.spawn('haproxy', ['-db', '-f', join(work, `${lab.name}-haproxy.cfg`)], { stdio: 'ignore' }));
    // The DHCP failover pair: machines get the balancer's URL for scripts, boot1 for TFTP.
    for (const [me, peer, role] of [
      ['dhcp1', 'dhcp2', 'primary'],
      ['dhcp2', 'dhcp1', 'secondary'],
    ] as const) {
      servers.push(
        await startServer(
          [
            '--roles',
            'api,dhcp',
            '--dhcp-server-id',
            m[me]!.ip,
            '--dhcp-failover',
            role,
            '--dhcp-peer',
            m[peer]!.ip,
            '--dhcp-failover-key-file',
            pairKey,
            '--dhcp-next-server',
            m.boot1!.ip,
            '--boot-base-url',
            `http://${m.lb!.ip}:8081`,
            '--node-name',
            `${lab.name}-${me}`,
            '--site',
            lab.name,
            '--log-level',
            'error',
          ],
          env,
          60_000,
          { netns: m[me]!.name },
        ),
      );
    }
    // The distributed network's own boot node: DHCP, TFTP and boot HTTP for that network only.
    const node = lab.distributed.members.node!;
    servers.push(
      await startServer(
        [
          '--roles',
          'http,tftp,dhcp',
          '--http-listen',
          `${node.ip}:8081`,
          '--tftp-listen',
          `${node.ip}:69`,
          '--dhcp-server-id',
          node.ip,
          '--networks',
          `${lab.name}-dist`,
          '--node-name',
          `${lab.name}-node`,
          '--site',
          lab.name,
          '--log-level',
          'error',
        ],
        env,
        60_000,
        { netns: node.name },
      ),
    );
    say(
      `${lab.name}: DHCP pair ${m.dhcp1!.ip}/${m.dhcp2!.ip}, boot servers behind HAProxy ${m.lb!.ip}:8081, distributed node ${node.ip}`,
    );
  }
  await new Promise((r) => setTimeout(r, 4000)); // the DHCP pairs find each other (recover → normal)
  const nodes = JSON.parse((await runCli(control.url, ['--json', 'nodes'])).stdout) as {
    name: string;
    alive: boolean;
  }[];
  say(`${nodes.filter((n) => n.alive).length} kvmfleet nodes alive: ${nodes.map((n) => n.name).join(', ')}`);

  if (values.storm) {
    const client = join(import.meta.dirname, '..', '..', 'bench', 'storm-client.ts');
    interface Part {
      lab: string;
      part: string;
      child: ChildProcess;
      ready: Promise<void>;
      done: Promise<StormPart>;
    }
    // Every load generator starts (Node + tsx, a second or two of CPU each) before the storm does: they
    // say when they are ready, and all begin on one word, so the time is the machines' only.
    const parts: Part[] = labs.flatMap((lab, s) => {
      const m = lab.segment.members;
      const d = lab.distributed.members;
      const prefix = sitePrefix(s);
      const storm = (
        ns: Segment['members'][string] | undefined,
        servers: string,
        giaddr: string,
        count: number,
        first: number,
        part: string,
      ): Part => {
        const child = ns!.spawn(
          process.execPath,
          ['--import', 'tsx', client, servers, giaddr, String(count), '40', prefix, 'POST', String(first)],
          { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, KVMFLEET_STORM_GO: 'stdin' } },
        );
        let stdout = '';
        let readySeen: () => void;
        const ready = new Promise<void>((resolve) => (readySeen = resolve));
        child.stdout!.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('"ready":true')) readySeen();
        });
        const done = new Promise<StormPart>((resolve, reject) => {
          child.on('error', reject);
          child.on('exit', (code) => {
            const last = stdout.trim().split('\n').at(-1) ?? '';
            if (code !== 0 || last.includes('"ready"'))
              return reject(new Error(`storm client ${lab.name} ${part} exited ${code}: ${stdout}`));
            resolve({ lab: lab.name, part, ...(JSON.parse(last) as Omit<StormPart, 'lab' | 'part'>) });
          });
        });
        done.catch(() => undefined);
        return { lab: lab.name, part, child, ready: Promise.race([ready, done.then(() => undefined)]), done };
      };
      const pair = `${m.dhcp1!.ip},${m.dhcp2!.ip}`;
      return [
        // Clustered networks: through the routers' relay, to both DHCP servers of the pair.
        storm(m.relay, pair, `${lab.relayNet}.0.1`, lab.half, 0, 'hv-a'),
        storm(m.relay, pair, `${lab.relayNet}.4.1`, lab.clustered - lab.half, lab.half, 'hv-b'),
        // The distributed network: its own boot node (the simulator stands in for the machines on it).
        storm(d.machines, d.node!.ip, d.machines!.ip, HOSTS - lab.clustered, lab.clustered, 'dist'),
      ];
    });
    const abort = setTimeout(() => parts.forEach((p) => p.child.kill()), 900_000);
    await Promise.all(parts.map((p) => p.ready));
    const cpuBefore = cpuByKind();
    const started = Date.now();
    for (const p of parts) p.child.stdin!.end('go\n');
    const results = await Promise.all(parts.map((p) => p.done)).finally(() => clearTimeout(abort));
    const seconds = (Date.now() - started) / 1000;
    const cpuAfter = cpuByKind();
    const built = JSON.parse(
      (await runCli(control.url, ['--json', 'host', 'list', '--state', 'built'])).stdout,
    ) as unknown[];
    console.log(
      `\nstorm: ${results.map((r) => `${r.lab} ${r.part}: ${r.failures} failed in ${Number(r.seconds).toFixed(1)} s`).join('; ')}`,
    );
    // Where the time went: each step's mean per machine, and the CPU seconds each kind of process used.
    const stepMs: Record<string, number> = {};
    for (const r of results)
      for (const [step, ms] of Object.entries(r.stepMs ?? {})) stepMs[step] = (stepMs[step] ?? 0) + ms / results.length;
    say(
      `mean ms per machine by step: ${Object.entries(stepMs)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(', ')}`,
    );
    const cpu = Object.entries(cpuAfter)
      .map(([kind, s]) => [kind, s - (cpuBefore[kind] ?? 0)] as const)
      .concat([['storm clients', results.reduce((sum, r) => sum + (r.clientCpuSeconds ?? 0), 0)]])
      .sort((a, b) => b[1] - a[1]);
    say(
      `CPU seconds during the storm (2 cores × ${seconds.toFixed(1)} s = ${(2 * seconds).toFixed(0)}): ${cpu.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`,
    );
    console.log(`built: ${built.length} hosts in ${seconds.toFixed(1)} s`);
    if (results.some((r) => r.failures > 0))
      throw new Error(`failures: ${JSON.stringify(results.map((r) => r.errors))}`);
  }
  if (values.keep) {
    say(`running; API ${control.url} (from this machine). Ctrl-C stops everything.`);
    await new Promise((resolve) => process.once('SIGINT', resolve));
  }
}

interface StormPart {
  lab: string;
  part: string;
  seconds: number;
  failures: number;
  errors: string[];
  stepMs?: Record<string, number>;
  clientCpuSeconds?: number;
}

/** CPU seconds (user + system) so far of the servers by their roles, HAProxy and PostgreSQL. */
function cpuByKind(): Record<string, number> {
  const ticks = 100; // USER_HZ
  const of = (pid: number | undefined) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ');
      return (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      return 0;
    }
  };
  const kinds: Record<string, number> = {};
  const add = (kind: string, seconds: number) => (kinds[kind] = (kinds[kind] ?? 0) + seconds);
  for (const server of servers) {
    const roles = /--roles (\S+)/.exec(server.child.spawnargs.join(' '))?.[1] ?? '?';
    add(`kvmfleet ${roles}`, of(server.child.pid));
  }
  for (const child of children) add('haproxy', of(child.pid));
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') add('postgres', of(Number(pid)));
    } catch {
      /* gone */
    }
  }
  return kinds;
}

async function teardown(): Promise<void> {
  for (const child of children) child.kill();
  for (const server of servers.reverse()) await server.kill().catch(() => undefined);
  for (const segment of segments) await segment.cleanup();
  await pgStop?.();
  rmSync(work, { recursive: true, force: true });
}

main()
  .then(teardown)
  .catch(async (error: Error) => {
    console.error(`example: ${error.message}`);
    await teardown();
    process.exit(1);
  });
