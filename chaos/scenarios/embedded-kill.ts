/**
 * SIGKILL of the all-in-one process (api, http, tftp, dhcp, worker on the embedded store) in the
 * middle of a DHCP + boot-HTTP storm, then a restart on the same data directory. Promise checked:
 * every ACK seen on the wire is still the store's lease of that client, no address is ACKed to two
 * clients, every build callback answered 2xx is still *built*, and the builds cut off resume.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureDhcp } from '../lib/capture.ts';
import { withCleanup } from '../lib/cleanup.ts';
import { createLab, fillInventory, GIADDR, hosts, knownMac, knownName, leases, unknownMac } from '../lib/lab.ts';
import { count, runMachines } from '../lib/run-machines.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';
import { ackedIntegrity } from '../lib/verdicts.ts';

const KNOWN = 120;
const UNKNOWN = 240;

export const embeddedKill: Scenario = {
  name: 'embedded-kill',
  fault: 'SIGKILL of the all-in-one embedded process under a DHCP + boot-HTTP storm',
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const work = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-kill-'));
      defer('work dir', () => rmSync(work, { recursive: true, force: true }));
      const lab = await createLab(defer, { label: 'ckill', args: ['--data-dir', join(work, 'data')] });
      await fillInventory(lab, KNOWN);
      const capture = await captureDhcp(defer, lab.net.client, work);
      // Known and unknown machines interleaved, one every 25 ms.
      const machines = Array.from({ length: KNOWN + UNKNOWN }, (_, i) =>
        i % 3 === 0 && i / 3 < KNOWN ? { mac: knownMac(i / 3), known: true } : { mac: unknownMac(i), known: false },
      );
      const run = runMachines(defer, lab.net.client, {
        server: lab.serverIp,
        giaddr: GIADDR,
        machines,
        staggerMs: 25,
        retryMs: 1000,
        deadlineMs: 150_000,
        callback: 'post',
      });
      // Kill it once a third of the builds have called back: leases, builds and callbacks are all in flight.
      await run.when((events) => count(events, 'built') >= KNOWN / 3, 120_000);
      const before = { acks: run.acks().length, built: run.built().size };
      await lab.crash();
      // Start again on the same data directory (its store lock is stale now), as systemd would.
      await new Promise((r) => setTimeout(r, 2000));
      const restartAt = Date.now();
      await lab.start();
      const restartS = (Date.now() - restartAt) / 1000;
      await run.finished;
      const wire = await capture.stop();
      const verdict = ackedIntegrity([...wire, ...run.acks()], await leases(lab));
      const states = new Map((await hosts(lab)).map((h) => [h.hostname, h.buildState]));
      const builtByMac = new Map(Array.from({ length: KNOWN }, (_, i) => [knownMac(i), knownName(i)]));
      const lostBuilds = [...run.built()].filter((mac) => states.get(builtByMac.get(mac)!) !== 'built');
      const builtNow = [...states.values()].filter((s) => s === 'built').length;
      findings.check(
        verdict.twice.length === 0,
        `addresses ACKed to two clients: ${verdict.twice.slice(0, 3).join(', ')}`,
      );
      findings.check(builtNow === KNOWN, `only ${builtNow}/${KNOWN} hosts built after the restart (${run.failures()})`);
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      return {
        figures: `${KNOWN} installs + ${UNKNOWN} unknown; killed after ${before.acks} ACKs/${before.built} built; restart ${restartS.toFixed(1)} s; ACKs on the wire ${verdict.acked} (lost ${verdict.lost.length}), built answered 2xx ${run.built().size} (lost ${lostBuilds.length}), built at end ${builtNow}/${KNOWN}`,
        lost: verdict.lost.length + lostBuilds.length,
        failures: findings.failures,
      };
    }),
};
