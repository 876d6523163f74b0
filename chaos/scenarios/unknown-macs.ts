/**
 * 10 000 distinct unknown MACs send one PXE DISCOVER each through the relay, 500 a second
 * (test/helpers/dhcp-probe.ts plays the relay), against the all-in-one process on the embedded
 * store. Promise checked: the process stays up and answers, and its resident memory stays under
 * the stated bounds — MEMORY_BOUND_MIB above what it used before the flood, at the flood's peak,
 * and the lease pool's entries (its /metrics gauge) within what lease-pool.ts promises for a pool of
 * 510 addresses, once the offers' holds have run out.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClientMessage } from '../../src/protocols/dhcp4/client-message.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { decodePacket, encodePacket, MessageType } from '../../src/protocols/dhcp4/packet.ts';
import type { ProbePlan, ProbeReceived } from '../../test/helpers/dhcp-probe.ts';
import { withCleanup } from '../lib/cleanup.ts';
import { apiOk, createLab, fillInventory, GIADDR, memoryMiB, serverPid, unknownMac } from '../lib/lab.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';

const CLIENTS = 10_000;
const INTERVAL_MS = 2;
const POOL_START = '10.241.200.1';
const POOL_END = '10.241.201.254';
const POOL_SIZE = 510;
/** What the lease pool may remember: its holds (≤ one per address) and at most max(1024, 2 × size) clients (lease-pool.ts). */
const POOL_ENTRIES_BOUND = POOL_SIZE + Math.max(1024, 2 * POOL_SIZE);
/** The stated bound: growth of resident memory over the flood, at its peak. */
export const MEMORY_BOUND_MIB = 64;

export const unknownMacs: Scenario = {
  name: 'unknown-macs',
  fault: `${CLIENTS} distinct unknown MACs' DISCOVERs at ${1000 / INTERVAL_MS}/s`,
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const work = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-macs-'));
      defer('work dir', () => rmSync(work, { recursive: true, force: true }));
      const lab = await createLab(defer, { label: 'cmacs', args: ['--data-dir', join(work, 'data')] });
      // A /23's worth of dynamic addresses: far fewer than the clients, as on a real boot network.
      await fillInventory(lab, 0, { start: POOL_START, end: POOL_END });
      const pxe: [number, Buffer][] = [
        [OptionCode.ClientArch, Buffer.from([0, 0])],
        [OptionCode.VendorClass, Buffer.from('PXEClient:Arch:00000:UNDI:002001')],
      ];
      const sends = Array.from({ length: CLIENTS }, (_, i) => ({
        b64: encodePacket(
          buildClientMessage(MessageType.Discover, {
            mac: unknownMac(i),
            xid: 0x5000_0000 + i,
            giaddr: GIADDR,
            options: pxe,
          }),
        ).toString('base64'),
        to: lab.serverIp,
        fromPort: 67 as const,
        atMs: i * INTERVAL_MS,
      }));
      const planFile = join(work, 'plan.json');
      writeFileSync(planFile, JSON.stringify({ sends, listenMs: CLIENTS * INTERVAL_MS + 5000 } satisfies ProbePlan));
      await new Promise((r) => setTimeout(r, 3000)); // let start-up settle before the baseline
      const pid = serverPid(lab.server);
      writeFileSync(`/proc/${pid}/clear_refs`, '5'); // the peak (VmHWM) from now on
      const before = memoryMiB(pid);
      const probe = lab.net.client.exec(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, '../../test/helpers/dhcp-probe.ts'), `@${planFile}`],
        { timeoutMs: 120_000, maxBuffer: 256 * 1024 * 1024 },
      );
      let peak = before.rss;
      const sampler = setInterval(() => {
        try {
          peak = Math.max(peak, memoryMiB(pid).rss);
        } catch {
          /* gone: reported below */
        }
      }, 250);
      const { stdout } = await probe.finally(() => clearInterval(sampler));
      const during = memoryMiB(pid);
      peak = Math.max(peak, during.peak);
      const offers = new Set<string>();
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        const packet = decodePacket(Buffer.from((JSON.parse(line) as ProbeReceived).b64, 'base64'));
        if (packet.options.get(OptionCode.MessageType)?.[0] === MessageType.Offer)
          offers.add(packet.chaddr.subarray(0, 6).toString('hex'));
      }
      await new Promise((r) => setTimeout(r, 5000));
      const after = memoryMiB(pid).rss;
      const health = await lab.api('GET', '/healthz');
      // What the DHCP role still remembers (the lease pool's bounded entries), where /metrics shows it:
      // now, and once the offers' holds (30 s) have run out.
      const poolEntries = async () => {
        const metrics = String((await lab.api('GET', '/metrics')).body);
        if (!/^kvmfleet_dhcp_pool_entries/m.test(metrics)) return NaN;
        return [...metrics.matchAll(/^kvmfleet_dhcp_pool_entries\{[^}]*\}\s+(\d+)/gm)].reduce(
          (sum, m) => sum + Number(m[1]),
          0,
        );
      };
      const entriesSoon = await poolEntries();
      await new Promise((r) => setTimeout(r, 30_000));
      const entriesLater = await poolEntries();
      const rssLater = memoryMiB(pid).rss;
      const discovered = ((await apiOk(lab, 'GET', '/api/v1/hosts?state=discovered&limit=99999')) as unknown[]).length;
      const growth = peak - before.rss;
      findings.check(
        entriesLater <= POOL_ENTRIES_BOUND,
        `the lease pool keeps ${entriesLater} entries (bound ${POOL_ENTRIES_BOUND}, or not in /metrics)`,
      );
      findings.check(health.status === 200, `the API answered /healthz with ${health.status} after the flood`);
      findings.check(
        growth <= MEMORY_BOUND_MIB,
        `resident memory grew ${growth.toFixed(0)} MiB over the flood (bound ${MEMORY_BOUND_MIB} MiB)`,
      );
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      return {
        figures: `${CLIENTS} DISCOVERs, ${offers.size} offered; RSS ${before.rss.toFixed(0)} → peak ${peak.toFixed(0)} MiB (+${growth.toFixed(0)}, bound +${MEMORY_BOUND_MIB}), ${after.toFixed(0)} MiB 5 s after; ${rssLater.toFixed(0)} MiB 35 s after; ${discovered} discovered rows; lease pool (${POOL_SIZE} addresses) entries ${entriesSoon} 5 s after, ${entriesLater} 35 s after (bound ${POOL_ENTRIES_BOUND})`,
        lost: 0,
        failures: findings.failures,
      };
    }),
};
