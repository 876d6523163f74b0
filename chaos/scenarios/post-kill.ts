/**
 * The boot server SIGKILLed while 50 installs run their Kickstart's %post: each simulated installer
 * runs the rendered %post itself (sh, the real curl, the template's retry loop with backoff), a
 * tenth of a second apart; kvmfleet is killed once 10 have called back and started again 3 s
 * later. Promise checked: all 50 end *built* — none is left to time out as *failed*.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withCleanup } from '../lib/cleanup.ts';
import { createLab, fillInventory, GIADDR, hosts, knownMac } from '../lib/lab.ts';
import { count, runMachines } from '../lib/run-machines.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';

const INSTALLS = 50;

export const postKill: Scenario = {
  name: 'post-kill',
  fault: 'boot server SIGKILLed during %post of 50 installs',
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const work = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-post-'));
      defer('work dir', () => rmSync(work, { recursive: true, force: true }));
      const lab = await createLab(defer, { label: 'cpost', args: ['--data-dir', join(work, 'data')] });
      await fillInventory(lab, INSTALLS);
      const machines = Array.from({ length: INSTALLS }, (_, i) => ({ mac: knownMac(i), known: true }));
      const run = runMachines(defer, lab.net.client, {
        server: lab.serverIp,
        giaddr: GIADDR,
        machines,
        staggerMs: 20,
        retryMs: 1000,
        deadlineMs: 180_000,
        callback: 'kickstart',
        holdMs: 2000,
        holdStepMs: 100,
      });
      await run.when((events) => count(events, 'built') >= 10, 120_000);
      const kickstartsBefore = count(run.events, 'kickstart');
      const builtBefore = run.built().size;
      await lab.crash();
      const killedAt = Date.now();
      await new Promise((r) => setTimeout(r, 3000));
      await lab.start();
      const downS = (Date.now() - killedAt) / 1000;
      await run.finished;
      const finishedS = (Date.now() - killedAt) / 1000;
      const states = (await hosts(lab)).map((h) => h.buildState);
      const built = states.filter((s) => s === 'built').length;
      const reported = run.built().size;
      const retried = run.events.filter((e) => e.ev === 'built' && (e.refused ?? 0) > 0).length;
      findings.check(retried > 0, 'no %post met the dead server: the kill came too late to test anything');
      findings.check(
        reported === INSTALLS,
        `${INSTALLS - reported} %post loops ended without "build reported" (${run.failures()})`,
      );
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      return {
        figures: `${INSTALLS} installs; killed after ${builtBefore} callbacks (${kickstartsBefore} Kickstarts fetched); down ${downS.toFixed(1)} s; ${reported} %post reported (${retried} after failed attempts), ${built}/${INSTALLS} built, last ${finishedS.toFixed(0)} s after the kill; other states: ${summarize(states.filter((s) => s !== 'built'))}`,
        lost: INSTALLS - built,
        failures: findings.failures,
      };
    }),
};

function summarize(states: readonly string[]): string {
  if (!states.length) return 'none';
  const counts = new Map<string, number>();
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}
