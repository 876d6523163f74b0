/** The capacity planner: the seed's sites, by hand-checkable numbers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLAN_DEFAULTS, planCapacity, type PlanInput } from '../../src/cluster/plan.ts';
import { runCli } from '../helpers/server.ts';

const base: PlanInput = {
  ...PLAN_DEFAULTS,
  hostsPerSite: 500,
  serverTreeMiBps: 500,
  serverKickstartsPerSecond: 300,
  serverDhcpAcksPerSecond: 3900,
};

test('500 hypervisors, 20-minute builds, an 8-hour window: 24 waves, 21 at once, distributed over 10 networks', () => {
  const plan = planCapacity(base);
  assert.equal(plan.concurrentBuilds, 21); // ceil(500 / 24)
  assert.equal(plan.buildCap, 21);
  // 1536 MiB in 360 s = 4.27 MiB/s per host; × 21 = 89.6 MiB/s; one server plans to 350 MiB/s.
  assert.equal(plan.requiredMiBps, 89.6);
  assert.equal(plan.perServerMiBps, 350);
  assert.equal(plan.topology, 'distributed');
  assert.equal(plan.bootServers, 10);
  assert.ok(plan.reasoning.length >= 5);
});

test('all 500 in one hour on 40 networks: clustered, sized by bandwidth, N+1', () => {
  const plan = planCapacity({ ...base, windowHours: 1, networksPerSite: 40 });
  assert.equal(plan.concurrentBuilds, 167); // 3 waves
  assert.equal(plan.topology, 'clustered');
  // 167 × 4.27 = 712.5 MiB/s → 3 servers at 350 MiB/s, + 1 spare.
  assert.equal(plan.bootServers, 4);
  assert.match(plan.reasoning.join('\n'), /40 networks are more boot nodes than are worth running/);
});

test('a slow NIC caps what a server can give; a window shorter than a build cannot be met', () => {
  const plan = planCapacity({ ...base, nicGbit: 1, windowHours: 1, networksPerSite: 4 });
  assert.equal(plan.perServerMiBps, 83.4); // 119.2 MiB/s × 0.7
  assert.equal(plan.topology, 'clustered', 'one network needs more than one server');
  assert.equal(planCapacity({ ...base, windowHours: 0.25 }).fitsWindow, false);
  assert.throws(() => planCapacity({ ...base, downloadShare: 0 }), /download share/);
  assert.throws(() => planCapacity({ ...base, hostsPerSite: Number.NaN }), /hostsPerSite must be a number/);
});

test('kvmfleet plan prints its reasoning, from given or measured figures', async () => {
  const out = await runCli('http://127.0.0.1:9', [
    'plan',
    '--hosts',
    '500',
    '--networks',
    '10',
    '--tree-mibps',
    '500',
    '--kickstarts',
    '300',
    '--dhcp-acks',
    '3900',
  ]);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^per-server figures \(given\): 500 MiB\/s install tree/m);
  assert.match(out.stdout, /distributed: 10 boot server\(s\) per site, build cap 21/);
  const json = JSON.parse(
    (
      await runCli('http://127.0.0.1:9', [
        '--json',
        'plan',
        '--hosts',
        '500',
        '--window-h',
        '1',
        '--networks',
        '40',
        '--tree-mibps',
        '500',
        '--kickstarts',
        '300',
        '--dhcp-acks',
        '3900',
      ])
    ).stdout,
  );
  assert.equal(json.topology, 'clustered');
});
