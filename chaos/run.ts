/**
 * npm run chaos [-- --only NAME,…]: each fault of issue #19 against the real system (kvmfleet
 * processes started here, inside network namespaces made and removed here), one line per scenario
 * with its figures, then `N scenarios, M lost`. Exits 1 if anything was lost, a promise was broken
 * or a process died unexpectedly. Needs root and the packages of deploy/debian-packages.txt.
 */
import { cleanupAll } from './lib/cleanup.ts';
import type { Scenario, ScenarioResult } from './lib/scenario.ts';
import { diskFull } from './scenarios/disk-full.ts';
import { embeddedKill } from './scenarios/embedded-kill.ts';
import { pgOutage } from './scenarios/pg-outage.ts';
import { postKill } from './scenarios/post-kill.ts';
import { sshSeal } from './scenarios/ssh-seal.ts';
import { unknownMacs } from './scenarios/unknown-macs.ts';
import { workerKill } from './scenarios/worker-kill.ts';

/** Longer than any scenario takes here (the slowest, worker-kill, about 90 s). */
const SCENARIO_TIMEOUT_S = 420;

const SCENARIOS: readonly Scenario[] = [embeddedKill, postKill, pgOutage, workerKill, sshSeal, diskFull, unknownMacs];

function selected(argv: readonly string[]): Scenario[] {
  const at = argv.indexOf('--only');
  if (at < 0) return [...SCENARIOS];
  const names = (argv[at + 1] ?? '').split(',').filter(Boolean);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (names.length === 0 || unknown.length) {
    console.error(
      `chaos: --only wants scenario names among: ${SCENARIOS.map((s) => s.name).join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    );
    process.exit(2);
  }
  return SCENARIOS.filter((s) => names.includes(s.name));
}

if (process.getuid?.() !== 0) {
  console.error('chaos: needs root (network namespaces, PostgreSQL, libvirt), as the tests do');
  process.exit(2);
}
const scenarios = selected(process.argv.slice(2));
const width = Math.max(...scenarios.map((s) => s.name.length));
let lost = 0;
let broken = 0;
const started = Date.now();
for (const scenario of scenarios) {
  const at = Date.now();
  let result: ScenarioResult;
  // A scenario stuck on a promise nothing will settle is a failure to report, not a silent exit (13).
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(
        () => reject(new Error(`no result after ${SCENARIO_TIMEOUT_S} s`)),
        SCENARIO_TIMEOUT_S * 1000,
      )),
  );
  try {
    result = await Promise.race([scenario.run(), timeout]);
  } catch (error) {
    result = { figures: `did not complete: ${(error as Error).message.split('\n')[0]}`, lost: 0, failures: ['error'] };
  }
  clearTimeout(timer);
  await cleanupAll(); // whatever a scenario left registered (it undoes its own as it ends)
  lost += result.lost;
  if (result.failures.length) broken++;
  const verdict = result.lost ? 'LOST' : result.failures.length ? 'FAIL' : 'ok';
  const seconds = ((Date.now() - at) / 1000).toFixed(0).padStart(4);
  console.log(`${scenario.name.padEnd(width)}  ${verdict.padEnd(4)} ${seconds} s  ${result.figures}`);
  for (const failure of result.failures)
    if (failure !== 'error') console.log(`${' '.repeat(width)}        ! ${failure}`);
}
console.log(
  `${scenarios.length} scenarios, ${lost} lost${broken ? `, ${broken} failed` : ''} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
);
process.exit(lost > 0 || broken > 0 ? 1 : 0);
