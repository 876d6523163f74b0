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
import { httpBench, type HttpBenchResult } from './http-boot.ts';
import { dhcpCeiling, type DhcpServer } from './dhcp-perf.ts';
import { MAX_DROP_PERCENT, type Ceiling } from './dhcp-search.ts';
import { startPostgres } from './postgres.ts';
import { libvirtCalls } from './libvirt-calls.ts';
import { cloneBench } from './vm-clones.ts';
import { stormBaseline, stormKvmfleet, type StormResult } from './boot-storm.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    clients: { type: 'string', default: '500' },
    only: { type: 'string' },
    // e.g. --storm-sizes 500: only those rows of the boot storm's series (the full-size row runs at 100)
    'storm-sizes': { type: 'string' },
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
  dhcp: ['/usr/sbin/perfdhcp', '/usr/sbin/kea-dhcp4', '/usr/sbin/kea-admin', '/usr/bin/psql', '/usr/bin/curl'],
};
const missing = Object.entries(PEERS)
  .filter(([area]) => wanted(area))
  .flatMap(([, files]) => files.filter((f) => !existsSync(f)));
if (missing.length > 0) {
  console.error(
    `bench: missing peers or tools: ${missing.join(', ')} (apt-get install tftpd-hpa curl atftp ipxe nginx-light wrk kea-admin kea-dhcp4-server postgresql dnsmasq-base libvirt-daemon-system virtinst qemu-utils dosfstools mtools)`,
  );
  process.exit(1);
}
if (process.getuid?.() !== 0) {
  console.error('bench: needs root (it builds network namespaces)');
  process.exit(1);
}

const rows: Row[] = [];

/** A ceiling in a few words for the row: ACK/s there, where it failed, and whether something else was the limit. */
function describeCeiling(c: Ceiling): string {
  const parts = [`${c.acksPerSecond.toFixed(0)} ACK/s at ${c.rate}/s`];
  if (c.firstFailure !== undefined) parts.push(`failed at ${c.firstFailure}/s`);
  if (c.clientLimited) parts.push('perfdhcp could offer no more (ceiling ≥ that)');
  if (c.budgetSpent) parts.push('search stopped by its time budget');
  parts.push(`${c.probes.length} probes`);
  return parts.join(', ');
}
const log = (text: string) => console.error(`bench: ${text}`);

if (wanted('dhcp')) {
  // One search per server whatever --runs says: each search is already several probes, and the DHCP
  // part stays within ~5 minutes (5 servers × ~45 s of probes + start-up).
  const probeSeconds = 3;
  const budgetSeconds = 45;
  const pg = await startPostgres();
  const ceilings = {} as Record<DhcpServer, Ceiling>;
  try {
    for (const server of ['kvmfleet', 'kea', 'kea-mt', 'kvmfleet-pg', 'kea-pg'] as const) {
      ceilings[server] = await dhcpCeiling(server, { budgetSeconds, probeSeconds, pg, log });
      log(`dhcp ${server}: ${describeCeiling(ceilings[server])}`);
    }
  } finally {
    await pg.stop();
  }
  const method = `highest offered rate with ≤ ${MAX_DROP_PERCENT} % of 4-way exchanges dropped (ISC's method; perfdhcp as a relay, ${probeSeconds} s probes doubling from 1 000/s then bisected to 10 %, one search per server), /16 pool, 60 000 clients`;
  const fsyncs = {
    kvmfleet:
      'kvmfleet embedded: leases group-committed (one transaction of the embedded PGlite store per batch) before their ACKs leave',
    kea: 'Kea memfile: each lease appended to its CSV lease file and flushed to the kernel, not fsynced',
    pg: 'both: a PostgreSQL commit (fsync on, synchronous_commit on) per lease before the ACK — kvmfleet groups them, Kea commits each',
  };
  const pairs: [DhcpServer, DhcpServer, string, string][] = [
    ['kvmfleet', 'kea', 'Kea 2.2 memfile', `Kea single-threaded (its default); ${fsyncs.kvmfleet}; ${fsyncs.kea}`],
    ['kvmfleet', 'kea-mt', 'Kea 2.2 memfile', `Kea multi-threaded (2 threads); ${fsyncs.kvmfleet}; ${fsyncs.kea}`],
    [
      'kvmfleet-pg',
      'kea-pg',
      'Kea 2.2 PostgreSQL',
      `kvmfleet on PostgreSQL vs Kea's pgsql lease backend (kea-admin db-init pgsql) on the same PostgreSQL 15 server; ${fsyncs.pg}`,
    ],
  ];
  for (const [ours, theirs, peer, note] of pairs) {
    const k = ceilings[ours];
    const p = ceilings[theirs];
    rows.push(
      compare({
        area: 'DHCP',
        metric: `${method}; ${note}; kvmfleet ${describeCeiling(k)}, Kea ${describeCeiling(p)}`,
        unit: 'offers/s',
        kvmfleet: measure([k.rate]),
        peer,
        peerValue: measure([p.rate]),
        lowerIsBetter: false,
        goal: '≥ 1.0×',
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
  const results: HttpBenchResult[] = [];
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
      goal: '≥ 0.1×',
    }),
  );
  // The three byte-rate rows: kvmfleet's side and plain nginx's, in MiB/s, from the same runs.
  const mib = (v: number) => v / 2 ** 20;
  const throughputRow = (
    metric: string,
    pair: (r: HttpBenchResult) => { kvmfleet: number; nginx: number },
    goal?: string,
  ) =>
    rows.push(
      compare({
        area: 'HTTP',
        metric,
        unit: 'MiB/s',
        kvmfleet: measure(results.map((r) => mib(pair(r).kvmfleet))),
        peer: 'nginx',
        peerValue: measure(results.map((r) => mib(pair(r).nginx))),
        lowerIsBetter: false,
        ...(goal ? { goal } : {}),
      }),
    );
  throughputRow('install-tree throughput, 64 MiB file, wrk 8 connections', (r) => r.treeBytesPerSecond, '≥ 0.5×');
  throughputRow(
    'install-tree throughput through the nginx of `kvmfleet nginx-config` (it serves /trees/), 64 MiB file, wrk 8 connections',
    (r) => r.nginxConfigTreeBytesPerSecond,
    '≥ 0.9×',
  );
  throughputRow(
    'kernel fetches (8 MiB) through the nginx of `kvmfleet nginx-config`: token checked and timeline written by kvmfleet, bytes by nginx (X-Accel-Redirect); peer sends the file, wrk 8 connections',
    (r) => r.kernelBytesPerSecond,
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
  // Each machine fetches its kernel and initrd too. 8 MiB + 32 MiB (a RHEL pxeboot pair, rounded) for
  // 1 850 machines would be 72 GiB over loopback, several minutes on this 2-core machine, so the
  // series over the machine count uses the pair scaled down 8× (1 MiB + 4 MiB) — the same bytes per
  // machine at every count, so how the time per machine grows is the count's doing — and one more
  // row runs 100 machines with the full-size pair.
  const MiB = 2 ** 20;
  const SCALE = 8;
  const full = { kernelBytes: 8 * MiB, initrdBytes: 32 * MiB };
  const scaled = { kernelBytes: full.kernelBytes / SCALE, initrdBytes: full.initrdBytes / SCALE };
  const inFlight = 100;
  const sizes = values['storm-sizes']?.split(',').map(Number);
  const storms = [
    { hosts: 100, files: full, label: '8 MiB + 32 MiB (full size)' },
    ...[100, 250, 500, 1000].map((hosts) => ({
      hosts,
      files: scaled,
      label: `1 MiB + 4 MiB (8 + 32 MiB scaled down ${SCALE}×)`,
    })),
  ].filter((storm) => !sizes || (storm.files === scaled && sizes.includes(storm.hosts)));
  const failures = (list: { failures: number }[]) => list.reduce((sum, r) => sum + r.failures, 0);
  const peaks = { kvmfleet: [] as number[], baseline: [] as number[] };
  for (let run = 0; run < runs; run++) {
    peaks.kvmfleet.push(0);
    peaks.baseline.push(0);
  }
  for (const storm of storms) {
    const k = [] as StormResult[];
    const b = [] as StormResult[];
    for (let run = 0; run < runs; run++) {
      k.push(await stormKvmfleet(storm.hosts, inFlight, storm.files));
      b.push(await stormBaseline(storm.hosts, inFlight, storm.files));
      peaks.kvmfleet[run] = Math.max(peaks.kvmfleet[run]!, k.at(-1)!.peakRssMiB);
      peaks.baseline[run] = Math.max(peaks.baseline[run]!, b.at(-1)!.peakRssMiB);
      log(
        `storm ${storm.hosts} × ${storm.label} run ${run + 1}: kvmfleet ${JSON.stringify(k.at(-1))}, dnsmasq+nginx ${JSON.stringify(b.at(-1))}`,
      );
    }
    const perMachine = (list: StormResult[]) => measure(list.map((r) => (1000 * r.seconds) / storm.hosts));
    const tk = measure(k.map((r) => r.seconds));
    const tb = measure(b.map((r) => r.seconds));
    rows.push(
      compare({
        area: 'Boot storm',
        metric: `${storm.hosts} simulated machines of one site, ${inFlight} at a time, through a relay: DHCP (PXE) → TFTP undionly.kpxe → DHCP (iPXE) → script → kernel + initrd ${storm.label} (kvmfleet: token-checked /boot/files/TOKEN/… → redirect → its own /trees/) → Kickstart → callback; whole storm kvmfleet ${tk.median.toFixed(2)} s, baseline ${tb.median.toFixed(2)} s; failed machines kvmfleet ${failures(k)}, baseline ${failures(b)}`,
        unit: 'ms per machine',
        kvmfleet: perMachine(k),
        peer: 'dnsmasq + nginx',
        peerValue: perMachine(b),
        lowerIsBetter: true,
        ...(storm.hosts === 500 ? { goal: '≤ 1.5×' } : {}),
      }),
    );
  }
  rows.push(
    compare({
      area: 'Memory',
      metric:
        'peak RSS (VmHWM, counted from just before each storm) over the storms above, highest of them (kvmfleet: one process, all boot roles, embedded PGlite store)',
      unit: 'MiB',
      kvmfleet: measure(peaks.kvmfleet),
      peer: 'dnsmasq + nginx',
      peerValue: measure(peaks.baseline),
      lowerIsBetter: true,
      goal: '≤ 300 MiB',
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
