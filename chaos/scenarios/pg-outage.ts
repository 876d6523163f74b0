/**
 * PostgreSQL stopped for 30 s in the middle of a boot storm, kvmfleet (all roles) on it. Promises
 * checked: no ACKed lease lost, no address ACKed to two clients, the builds cut off resume and all
 * end built; meanwhile the API (polled every second) answers 503 with Retry-After, never 500.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureDhcp } from '../lib/capture.ts';
import { withCleanup } from '../lib/cleanup.ts';
import { createLab, fillInventory, GIADDR, hosts, knownMac, knownName, leases, unknownMac } from '../lib/lab.ts';
import { startPostgres } from '../lib/postgres.ts';
import { count, runMachines } from '../lib/run-machines.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';
import { ackedIntegrity } from '../lib/verdicts.ts';

const KNOWN = 60;
const UNKNOWN = 120;
const OUTAGE_MS = 30_000;

export const pgOutage: Scenario = {
  name: 'pg-outage',
  fault: 'PostgreSQL stopped for 30 s during a storm',
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const work = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-pg-storm-'));
      defer('work dir', () => rmSync(work, { recursive: true, force: true }));
      const postgres = await startPostgres(defer);
      const lab = await createLab(defer, { label: 'cpg', args: ['--database-url', postgres.socketUrl] });
      await fillInventory(lab, KNOWN);
      const capture = await captureDhcp(defer, lab.net.client, work);
      const machines = Array.from({ length: KNOWN + UNKNOWN }, (_, i) =>
        i % 3 === 0 ? { mac: knownMac(i / 3), known: true } : { mac: unknownMac(i), known: false },
      );
      // One machine every 150 ms: the storm lasts 27 s, so the outage falls in its middle.
      const run = runMachines(defer, lab.net.client, {
        server: lab.serverIp,
        giaddr: GIADDR,
        machines,
        staggerMs: 150,
        retryMs: 1000,
        deadlineMs: 200_000,
        callback: 'post',
      });
      await run.when((events) => count(events, 'built') >= KNOWN / 4, 120_000);
      const before = { acks: run.acks().length, built: run.built().size };
      await postgres.stop();
      const stoppedAt = Date.now();
      const answers = new Map<string, number>();
      let sample = '';
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        const polledAt = Date.now();
        const answer = await lab
          .api('GET', '/api/v1/hosts?limit=1')
          .catch((error: Error) => ({ status: 0, headers: {} as Record<string, string>, body: error.message }));
        const key = `${answer.status || 'no answer'}${answer.status === 503 ? (answer.headers['retry-after'] ? ' with Retry-After' : ' without Retry-After') : ''}`;
        answers.set(key, (answers.get(key) ?? 0) + 1);
        if (answer.status !== 200 && answer.status !== 503 && !sample)
          sample = JSON.stringify(answer.body).slice(0, 200);
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - polledAt))));
      }
      const acksDuring = run.acks().length - before.acks;
      await postgres.start();
      const back = Date.now();
      await run.finished;
      const resumeS = (Date.now() - back) / 1000;
      const wire = await capture.stop();
      const verdict = ackedIntegrity([...wire, ...run.acks()], await leases(lab));
      const states = new Map((await hosts(lab)).map((h) => [h.hostname, h.buildState]));
      const nameOf = new Map(Array.from({ length: KNOWN }, (_, i) => [knownMac(i), knownName(i)]));
      const lostBuilds = [...run.built()].filter((mac) => states.get(nameOf.get(mac)!) !== 'built');
      const builtNow = [...states.values()].filter((s) => s === 'built').length;
      const polled = [...answers].map(([k, n]) => `${n}× ${k}`).join(', ');
      // The cause of a 500, as the server logged it.
      const logged = lab.server.lines.find((l) => /unexpected error/.test(l));
      const cause = logged ? (/"message":"([^"]{1,160})/.exec(logged)?.[1] ?? logged.slice(0, 160)) : '';
      findings.check(
        verdict.twice.length === 0,
        `addresses ACKed to two clients: ${verdict.twice.slice(0, 3).join(', ')}`,
      );
      findings.check(
        builtNow === KNOWN,
        `only ${builtNow}/${KNOWN} hosts built after PostgreSQL came back (${run.failures()})`,
      );
      findings.check(
        [...answers.keys()].every((k) => k === '200' || k === '503 with Retry-After'),
        `the API during the outage answered: ${polled}${sample ? ` (e.g. ${sample}${cause ? `; logged: ${cause}` : ''})` : ''}`,
      );
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      return {
        figures: `${KNOWN} installs + ${UNKNOWN} unknown; stopped after ${before.acks} ACKs/${before.built} built; ${acksDuring} ACKs during the outage; API during it: ${polled}; all done ${resumeS.toFixed(0)} s after; ACKs ${verdict.acked} (lost ${verdict.lost.length}, twice ${verdict.twice.length}), built answered 2xx ${run.built().size} (lost ${lostBuilds.length}), built at end ${builtNow}/${KNOWN}`,
        lost: verdict.lost.length + lostBuilds.length,
        failures: findings.failures,
      };
    }),
};
