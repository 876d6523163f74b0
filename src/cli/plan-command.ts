/** `kvmfleet plan`: the capacity planner on the command line, fed by the bench's measured figures. */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PLAN_DEFAULTS, planCapacity } from '../cluster/plan.ts';

interface BenchRow {
  area: string;
  metric: string;
  kvmfleet: { median: number };
}

const BENCH_RESULTS = new URL('../../bench/results/latest.json', import.meta.url);

/** Per-server figures from a bench results file (the README's table), where present. */
export function measuredFigures(path: string | URL = BENCH_RESULTS): {
  treeMiBps?: number;
  kickstarts?: number;
  dhcpAcks?: number;
  date?: string;
} {
  if (!existsSync(path)) return {};
  const results = JSON.parse(readFileSync(path, 'utf8')) as { date?: string; rows?: BenchRow[] };
  const find = (area: string, prefix: string) =>
    results.rows?.find((r) => r.area === area && r.metric.startsWith(prefix))?.kvmfleet.median;
  return {
    treeMiBps: find('HTTP', 'install-tree'),
    kickstarts: find('HTTP', 'Kickstart'),
    dhcpAcks: find('DHCP', 'perfdhcp'),
    ...(results.date ? { date: results.date } : {}),
  };
}

export function registerPlanCommand(program: Command, json: () => boolean): void {
  program
    .command('plan')
    .description('how many boot servers per site, which build cap, clustered or distributed — with the reasoning')
    .requiredOption('--hosts <n>', 'hypervisors per site', Number)
    .option('--networks <n>', "networks the site's hypervisors are on", Number, PLAN_DEFAULTS.networksPerSite)
    .option(
      '--install-gib <GiB>',
      'bytes one install fetches from the tree',
      Number,
      PLAN_DEFAULTS.installBytesPerHost / 2 ** 30,
    )
    .option('--build-min <minutes>', 'one build, power-on to callback', Number, PLAN_DEFAULTS.buildMinutes)
    .option('--window-h <hours>', 'time to build the whole site', Number, PLAN_DEFAULTS.windowHours)
    .option('--download-share <0..1>', 'share of a build spent downloading', Number, PLAN_DEFAULTS.downloadShare)
    .option('--nic-gbit <n>', 'boot server NIC speed', Number, PLAN_DEFAULTS.nicGbit)
    .option('--tree-mibps <n>', 'install-tree MiB/s of one server (default: the bench results)', Number)
    .option('--kickstarts <n>', 'Kickstarts/s of one server (default: the bench results)', Number)
    .option('--dhcp-acks <n>', 'DHCP ACKs/s of one server (default: the bench results)', Number)
    .option('--bench <file>', 'bench results JSON to read the measured figures from')
    .action(
      (o: {
        hosts: number;
        networks: number;
        installGib: number;
        buildMin: number;
        windowH: number;
        downloadShare: number;
        nicGbit: number;
        treeMibps?: number;
        kickstarts?: number;
        dhcpAcks?: number;
        bench?: string;
      }) => {
        const measured = measuredFigures(o.bench ?? BENCH_RESULTS);
        const tree = o.treeMibps ?? measured.treeMiBps;
        const kickstarts = o.kickstarts ?? measured.kickstarts;
        const dhcp = o.dhcpAcks ?? measured.dhcpAcks;
        if (tree === undefined || kickstarts === undefined || dhcp === undefined) {
          throw new Error(
            'no measured figures: run `npm run bench` (bench/results/latest.json) or give --tree-mibps, --kickstarts and --dhcp-acks',
          );
        }
        const plan = planCapacity({
          hostsPerSite: o.hosts,
          networksPerSite: o.networks,
          installBytesPerHost: o.installGib * 2 ** 30,
          buildMinutes: o.buildMin,
          windowHours: o.windowH,
          downloadShare: o.downloadShare,
          serverTreeMiBps: tree,
          serverKickstartsPerSecond: kickstarts,
          serverDhcpAcksPerSecond: dhcp,
          nicGbit: o.nicGbit,
          headroom: PLAN_DEFAULTS.headroom,
          maxDistributedNetworks: PLAN_DEFAULTS.maxDistributedNetworks,
        });
        const source =
          o.treeMibps !== undefined
            ? 'given'
            : `measured by npm run bench${measured.date ? ` on ${measured.date}` : ''}`;
        if (json())
          return console.log(
            JSON.stringify({ ...plan, figures: { treeMiBps: tree, kickstarts, dhcpAcks: dhcp, source } }, null, 2),
          );
        console.log(
          `per-server figures (${source}): ${tree.toFixed(0)} MiB/s install tree, ${kickstarts.toFixed(0)} Kickstarts/s, ${dhcp.toFixed(0)} DHCP ACKs/s`,
        );
        for (const line of plan.reasoning) console.log(`- ${line}`);
        console.log(
          `\n${plan.topology}: ${plan.bootServers} boot server(s) per site, build cap ${plan.buildCap}, ${plan.requiredMiBps} MiB/s at peak${plan.fitsWindow ? '' : ' — the window cannot be met'}`,
        );
      },
    );
}
