/**
 * The data directory's filesystem fills up (a 192 MiB tmpfs as --data-dir, filled to the last
 * block by a file) while machines boot and an operator writes through the API; then the space
 * comes back, and kvmfleet is restarted on the same directory. Promises checked: the process stays
 * up, what it answered during the fault was either done (and still there after the restart) or a
 * clear error, nothing already stored is lost or corrupted (the store opens again, every ACKed
 * lease and finished build is there), and booting works again once there is space.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withCleanup } from '../lib/cleanup.ts';
import {
  apiError,
  createLab,
  fillInventory,
  GIADDR,
  hosts,
  knownMac,
  knownName,
  leases,
  unknownMac,
  type ApiAnswer,
} from '../lib/lab.ts';
import { count, runMachines } from '../lib/run-machines.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';
import { ackedIntegrity } from '../lib/verdicts.ts';

const run = promisify(execFile);
const KNOWN = 20;
const UNKNOWN = 40;

export const diskFull: Scenario = {
  name: 'disk-full',
  fault: "the data directory's filesystem full, then space returns",
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const work = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-disk-'));
      defer('work dir', () => rmSync(work, { recursive: true, force: true }));
      const mount = join(work, 'mnt');
      mkdirSync(mount);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=192m,mode=0755', 'kvmfleet-chaos', mount]);
      defer('tmpfs', () => run('umount', ['-l', mount]).then(() => {}));
      const lab = await createLab(defer, { label: 'cdisk', args: ['--data-dir', join(mount, 'data')] });
      await fillInventory(lab, KNOWN);
      const machines = [
        ...Array.from({ length: KNOWN }, (_, i) => ({ mac: knownMac(i), known: true })),
        ...Array.from({ length: UNKNOWN }, (_, i) => ({ mac: unknownMac(i), known: false })),
      ];
      const filler = join(mount, 'filler');
      // Fill to the last block (dd stops at ENOSPC).
      await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'status=none']).catch(() => {});
      const free = await run('df', ['--output=avail', '-B1', mount]).then((r) => Number(r.stdout.split('\n')[1]));
      const full = runMachines(defer, lab.net.client, {
        server: lab.serverIp,
        giaddr: GIADDR,
        machines,
        staggerMs: 50,
        retryMs: 1000,
        deadlineMs: 25_000,
        callback: 'post',
      });
      const writes: ApiAnswer[] = [];
      for (let i = 0; i < 3; i++) {
        writes.push(await lab.api('POST', '/api/v1/sites', JSON.stringify({ name: `full-${i}`, buildCap: 1 })));
        await new Promise((r) => setTimeout(r, 3000));
      }
      await full.finished;
      const during = {
        acks: count(full.events, 'ack'),
        built: full.built().size,
        health: (await lab.api('GET', '/healthz')).status,
      };
      const spaceLog = lab.server.lines.filter((l) => /ENOSPC|No space left|disk full/i.test(l));
      const spaceLines = spaceLog.length;
      const firstSpaceLine = (spaceLog[0] ?? '').replace(/^.*?"msg":/, '').slice(0, 160);
      const answered = writes.map((w) => `${w.status}${w.status >= 400 ? ` ${errorCode(w.body)}` : ''}`).join(', ');
      rmSync(filler);
      const again = runMachines(defer, lab.net.client, {
        server: lab.serverIp,
        giaddr: GIADDR,
        machines,
        staggerMs: 50,
        retryMs: 1000,
        deadlineMs: 90_000,
        callback: 'post',
      });
      await again.finished;
      // A clean restart on the same directory: the store must open and hold everything it acknowledged.
      await lab.stop();
      await lab.start();
      const acks = [...full.acks(), ...again.acks()];
      const verdict = ackedIntegrity(acks, await leases(lab));
      const states = new Map((await hosts(lab)).map((h) => [h.hostname, h.buildState]));
      const nameOf = new Map(Array.from({ length: KNOWN }, (_, i) => [knownMac(i), knownName(i)]));
      const lostBuilds = [...full.built(), ...again.built()].filter((mac) => states.get(nameOf.get(mac)!) !== 'built');
      const builtNow = [...states.values()].filter((s) => s === 'built').length;
      const sites = ((await lab.api('GET', '/api/v1/sites')).body as { name: string }[]).map((s) => s.name);
      const lostWrites = writes.filter(
        (w, i) => w.status >= 200 && w.status < 300 && !sites.includes(`full-${i}`),
      ).length;
      findings.check(
        writes.every((w) => (w.status >= 200 && w.status < 300) || (w.status >= 500 && errorCode(w.body) !== '')),
        `API writes while full were answered ${answered} (wanted done, or an error with a code)`,
      );
      findings.check(during.health === 200, `/healthz answered ${during.health} while full`);
      findings.check(builtNow === KNOWN, `only ${builtNow}/${KNOWN} built once space was back (${again.failures()})`);
      findings.check(verdict.twice.length === 0, `addresses ACKed twice: ${verdict.twice.slice(0, 3).join(', ')}`);
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      return {
        figures: `full (${free} B free): ${during.acks} ACKs, ${during.built} built, API writes ${answered}, ${spaceLines} log lines naming the full disk (first: ${firstSpaceLine}); machines: ${full.failures(2) || 'no failures'}; space back: ${count(again.events, 'ack')} ACKs, built at end ${builtNow}/${KNOWN}; after restart ACKs ${verdict.acked} (lost ${verdict.lost.length}), builds lost ${lostBuilds.length}, writes lost ${lostWrites}`,
        lost: verdict.lost.length + lostBuilds.length + lostWrites,
        failures: findings.failures,
      };
    }),
};

function errorCode(body: unknown): string {
  return apiError(body).code;
}
