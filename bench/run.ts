/**
 * `npm run bench`: measures kvmfleet side by side with its peers on this machine, in the same run,
 * and prints one table of ratios (medians of several runs, with min and max). Installs nothing:
 * it checks for the peers and says what is missing. Results go to bench/results/ as JSON and Markdown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compare, markdownTable, measure, type Row } from './stats.ts';
import { tftpStorm } from './tftp-storm.ts';
import { httpBench } from './http-boot.ts';
import { dhcpRun, type DhcpPeer } from './dhcp-perf.ts';
import { libvirtCalls } from './libvirt-calls.ts';
import { cloneBench } from './vm-clones.ts';
import { stormBaseline, stormKvmfleet } from './boot-storm.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    clients: { type: 'string', default: '500' },
    only: { type: 'string' },
    'update-latest': { type: 'boolean' },
  },
});
const runs = Number(values.runs);
const clients = Number(values.clients);
const wanted = (area: string) => !values.only || values.only.split(',').includes(area);

const PEERS: Record<string, string[]> = {
  tftp: ['/usr/sbin/in.tftpd', '/usr/bin/curl', '/usr/bin/atftp', '/usr/lib/ipxe/ipxe.efi'],
  http: ['/usr/sbin/nginx', '/usr/bin/wrk'],
  libvirt: ['/usr/sbin/libvirtd', '/usr/bin/virsh'],
  vms: [
    '/usr/sbin/libvirtd',
    '/usr/bin/virt-clone',
    '/usr/bin/qemu-img',
    '/usr/bin/qemu-io',
    '/usr/sbin/mkfs.vfat',
    '/usr/bin/mcopy',
  ],
  storm: ['/usr/sbin/dnsmasq', '/usr/sbin/nginx', '/usr/lib/ipxe/undionly.kpxe'],
  dhcp: ['/usr/sbin/perfdhcp', '/usr/sbin/kea-dhcp4', '/usr/sbin/dnsmasq', '/usr/bin/curl'],
};
const missing = Object.entries(PEERS)
  .filter(([area]) => wanted(area))
  .flatMap(([, files]) => files.filter((f) => !existsSync(f)));
if (missing.length > 0) {
  console.error(
    `bench: missing peers or tools: ${missing.join(', ')} (apt-get install tftpd-hpa curl atftp ipxe nginx-light wrk kea-admin kea-dhcp4-server dnsmasq-base libvirt-daemon-system virtinst qemu-utils dosfstools mtools)`,
  );
  process.exit(1);
}
if (process.getuid?.() !== 0) {
  console.error('bench: needs root (it builds network namespaces)');
  process.exit(1);
}

const rows: Row[] = [];
const log = (text: string) => console.error(`bench: ${text}`);

if (wanted('dhcp')) {
  const rate = 4000;
  const seconds = 8;
  const acks: Record<DhcpPeer, number[]> = { kvmfleet: [], kea: [], dnsmasq: [] };
  const drops: Record<DhcpPeer, number[]> = { kvmfleet: [], kea: [], dnsmasq: [] };
  for (let run = 0; run < runs; run++) {
    for (const peer of ['kvmfleet', 'kea', 'dnsmasq'] as const) {
      const result = await dhcpRun(peer, rate, seconds);
      log(
        `dhcp ${peer} run ${run + 1}: ${result.acksPerSecond.toFixed(0)} ACKs/s, ${result.dropPercent.toFixed(2)} % dropped`,
      );
      acks[peer].push(result.acksPerSecond);
      drops[peer].push(result.dropPercent);
    }
  }
  const k = measure(acks.kvmfleet);
  for (const peer of ['kea', 'dnsmasq'] as const) {
    const p = measure(acks[peer]);
    rows.push(
      compare({
        area: 'DHCP',
        metric: `perfdhcp 4-way exchanges completed/s at ${rate}/s offered for ${seconds} s, /16 pool; median drops kvmfleet ${measure(drops.kvmfleet).median.toFixed(2)} %, ${peer} ${measure(drops[peer]).median.toFixed(2)} %`,
        unit: 'ACK/s',
        kvmfleet: k,
        peer: peer === 'kea' ? 'Kea 2.2 memfile' : 'dnsmasq',
        peerValue: p,
        lowerIsBetter: false,
      }),
    );
  }
}

if (wanted('tftp')) {
  for (const windowed of [false, true]) {
    const times = { kvmfleet: [] as number[], 'tftpd-hpa': [] as number[] };
    const failures = { kvmfleet: 0, 'tftpd-hpa': 0 };
    for (let run = 0; run < runs; run++) {
      for (const peer of ['kvmfleet', 'tftpd-hpa'] as const) {
        const result = await tftpStorm(peer, clients, windowed);
        log(
          `tftp ${windowed ? 'windowsize 16' : 'lock-step'} ${peer} run ${run + 1}: ${result.seconds.toFixed(2)} s, ${result.failures} failures`,
        );
        times[peer].push(result.seconds);
        failures[peer] += result.failures;
      }
    }
    const k = measure(times.kvmfleet);
    const p = measure(times['tftpd-hpa']);
    rows.push(
      compare({
        area: 'TFTP',
        metric: `${clients} concurrent fetches of ipxe.efi, ${windowed ? 'atftp windowsize 16' : 'curl lock-step, 90 s cap'}; failed fetches kvmfleet ${failures.kvmfleet}, tftpd-hpa ${failures['tftpd-hpa']}`,
        unit: 's',
        kvmfleet: k,
        peer: 'tftpd-hpa',
        peerValue: p,
        lowerIsBetter: true,
        goal: windowed ? '≤ 0.5×' : '≤ 1.0×',
      }),
    );
  }
}

if (wanted('http')) {
  const results = [];
  for (let run = 0; run < runs; run++) {
    const result = await httpBench();
    log(`http run ${run + 1}: ${JSON.stringify(result)}`);
    results.push(result);
  }
  const ksK = measure(results.map((r) => r.kickstartPerSecond.kvmfleet));
  const ksN = measure(results.map((r) => r.kickstartPerSecond.nginx));
  rows.push(
    compare({
      area: 'HTTP',
      metric: 'Kickstart answers/s (kvmfleet renders each; nginx sends the same text as a file), wrk 32 connections',
      unit: 'req/s',
      kvmfleet: ksK,
      peer: 'nginx (static)',
      peerValue: ksN,
      lowerIsBetter: false,
    }),
  );
  const mib = (v: number) => v / 2 ** 20;
  const trK = measure(results.map((r) => mib(r.treeBytesPerSecond.kvmfleet)));
  const trN = measure(results.map((r) => mib(r.treeBytesPerSecond.nginx)));
  rows.push(
    compare({
      area: 'HTTP',
      metric: 'install-tree throughput, 64 MiB file, wrk 8 connections',
      unit: 'MiB/s',
      kvmfleet: trK,
      peer: 'nginx',
      peerValue: trN,
      lowerIsBetter: false,
    }),
  );
}

if (wanted('libvirt')) {
  const results = [];
  for (let run = 0; run < runs; run++) {
    const result = await libvirtCalls();
    log(`libvirt run ${run + 1}: ${result.kvmfleet.toFixed(0)} pairs/s via RPC, ${result.virsh.toFixed(1)} via virsh`);
    results.push(result);
  }
  const k = measure(results.map((r) => r.kvmfleet));
  const v = measure(results.map((r) => r.virsh));
  rows.push(
    compare({
      area: 'libvirt',
      metric: 'lookup + getState pairs/s (test driver via libvirtd): RPC client on one connection vs virsh per call',
      unit: 'pairs/s',
      kvmfleet: k,
      peer: 'virsh per call',
      peerValue: v,
      lowerIsBetter: false,
      goal: '≥ 50×',
    }),
  );
}

if (wanted('storm')) {
  const hosts = 500;
  const inFlight = 100;
  const k = [] as Awaited<ReturnType<typeof stormKvmfleet>>[];
  const b = [] as Awaited<ReturnType<typeof stormBaseline>>[];
  for (let run = 0; run < runs; run++) {
    k.push(await stormKvmfleet(hosts, inFlight));
    b.push(await stormBaseline(hosts, inFlight));
    log(`storm run ${run + 1}: kvmfleet ${JSON.stringify(k.at(-1))}, dnsmasq+nginx ${JSON.stringify(b.at(-1))}`);
  }
  const failures = (list: { failures: number }[]) => list.reduce((sum, r) => sum + r.failures, 0);
  const tk = measure(k.map((r) => r.seconds));
  const tb = measure(b.map((r) => r.seconds));
  rows.push(
    compare({
      area: 'Boot storm',
      metric: `${hosts} simulated machines of one site, ${inFlight} at a time, through a relay: DHCP (PXE) → TFTP undionly.kpxe → DHCP (iPXE) → script → Kickstart → callback; failed machines kvmfleet ${failures(k)}, baseline ${failures(b)}`,
      unit: 's',
      kvmfleet: tk,
      peer: 'dnsmasq + nginx (static files)',
      peerValue: tb,
      lowerIsBetter: true,
    }),
  );
  const mk = measure(k.map((r) => r.peakRssMiB));
  const mb = measure(b.map((r) => r.peakRssMiB));
  rows.push(
    compare({
      area: 'Memory',
      metric: 'peak RSS during that storm (kvmfleet: one process, all boot roles, embedded PGlite store)',
      unit: 'MiB',
      kvmfleet: mk,
      peer: 'dnsmasq + nginx',
      peerValue: mb,
      lowerIsBetter: true,
    }),
  );
}

if (wanted('vms')) {
  const results = [];
  for (let run = 0; run < runs; run++) {
    const result = await cloneBench();
    log(`vms run ${run + 1}: ${JSON.stringify(result)}`);
    results.push(result);
  }
  const lk = measure(results.map((r) => r.linkedSeconds.kvmfleet));
  const lv = measure(results.map((r) => r.linkedSeconds.virtClone));
  rows.push(
    compare({
      area: 'VMs',
      metric:
        'one new VM from a template (1 GiB qcow2, 512 MiB written): kvmfleet linked clone (overlay + cloud-init seed + define) vs virt-clone (copies the disk)',
      unit: 's',
      kvmfleet: lk,
      peer: 'virt-clone',
      peerValue: lv,
      lowerIsBetter: true,
    }),
  );
  const fk = measure(results.map((r) => r.fullMiBps.kvmfleet));
  const fq = measure(results.map((r) => r.fullMiBps.qemuImg));
  rows.push(
    compare({
      area: 'VMs',
      metric:
        'full clone throughput, 512 MiB of data: kvmfleet (libvirt storage copy + seed + define) vs qemu-img convert',
      unit: 'MiB/s',
      kvmfleet: fk,
      peer: 'qemu-img convert',
      peerValue: fq,
      lowerIsBetter: false,
    }),
  );
  const bulk = measure(results.map((r) => r.bulk20Seconds));
  const perVm = measure(results.map((r) => r.linkedSeconds.virtClone * 20));
  rows.push(
    compare({
      area: 'VMs',
      metric:
        'bulk deploy of 20 linked clones (job, 4 at a time on one hypervisor) vs 20 virt-clone runs (estimated: 20 × one run)',
      unit: 's',
      kvmfleet: bulk,
      peer: '20 × virt-clone',
      peerValue: perVm,
      lowerIsBetter: true,
    }),
  );
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${execFileSync('uname', ['-sr']).toString().trim()}`;
const date = new Date().toISOString();
const table = markdownTable(rows);
console.log(`\nkvmfleet bench — ${date}\n${machine}\n\n${table}\n`);
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
// A partial run (--only) does not replace the full table the README shows, unless --update-latest:
// then its rows replace those of the same areas there (each row keeps its own date in `measured`).
const stem =
  values.only && !values['update-latest']
    ? `partial-${values.only.replace(/[^a-z,]/g, '').replace(/,/g, '-')}`
    : 'latest';
let allRows: (Row & { measured?: string })[] = rows.map((r) => ({ ...r, measured: date }));
let header = `${date} — ${machine}`;
if (values.only && values['update-latest'] && existsSync(join(dir, 'latest.json'))) {
  const previous = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as {
    date: string;
    rows: (Row & { measured?: string })[];
  };
  const areas = new Set(rows.map((r) => r.area));
  allRows = [
    ...previous.rows
      .map((r) => (areas.has(r.area) ? undefined : { ...r, measured: r.measured ?? previous.date }))
      .filter((r): r is Row & { measured: string } => !!r),
    ...allRows,
  ];
  const order = ['DHCP', 'TFTP', 'HTTP', 'libvirt', 'Boot storm', 'Memory', 'VMs'];
  allRows.sort((a, b) => order.indexOf(a.area) - order.indexOf(b.area));
  header = `${previous.date} (full run); ${[...areas].join(', ')} re-measured ${date} — ${machine}`;
}
writeFileSync(
  join(dir, `${stem}.json`),
  JSON.stringify(
    {
      date: stem === 'latest' && values.only ? JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')).date : date,
      machine,
      runs,
      clients,
      rows: allRows,
    },
    null,
    2,
  ),
);
writeFileSync(
  join(dir, `${stem}.md`),
  `# kvmfleet bench\n\n${header}\n\nEach figure is the median of ${runs} runs (min–max). Ratio = kvmfleet ÷ peer; for times lower is better.\n\n${markdownTable(allRows)}\n`,
);
