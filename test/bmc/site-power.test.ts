/**
 * Site power as a job against real BMCs: four OpenIPMI ipmi_sim servers in a "BMC" namespace and
 * one address where nothing listens (a dead BMC); the worker's BMC work (cluster/power-work.ts,
 * test/bmc/power-worker.ts) in a "management" namespace; this process queues the jobs and plays
 * the boot server's admission (fleet/builds.ts) on the same PostgreSQL store.
 *
 * - power-on with a build cap of 1 (margin 0): one host powered on at a time, the next only once the
 *   one before it has built; the dead BMC is an error result and the others go on;
 * - power-off: soft first, hard after the timeout; a host already off is left alone;
 * - the poller records a power change made behind kvmfleet's back and the live event stream tells it;
 * - a worker SIGKILLed mid job: another claims it when its lease runs out and finishes it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { EventHub, type LiveEvent } from '../../src/api/events.ts';
import { setHostBmc } from '../../src/bmc/credentials.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { startSitePower } from '../../src/bmc/site-power.ts';
import {
  admit,
  DEFAULT_BUILD_POLICY,
  findBootHost,
  operatorMarkBuilt,
  requestRebuild,
} from '../../src/fleet/builds.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createProfile } from '../../src/fleet/profiles.ts';
import { createSite, updateSite } from '../../src/fleet/sites.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import type { Job } from '../../src/vms/job-model.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import type { VmService } from '../../src/vms/vm-service.ts';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { createPostgresDatabase, viaUnixSocket } from '../helpers/stores.ts';
import { startIpmiSim, type IpmiSim } from './ipmi-sim.ts';

const WORKER = new URL('./power-worker.ts', import.meta.url).pathname;
const KEY = randomBytes(32);
const ring = keyringOf([KEY]);
const HOSTS = ['hv1', 'hv2', 'hv3', 'hv4'];
const DEAD = 'hv2-dead'; // sorts between hv2 and hv3: the job meets it half-way
const mac = (i: number) => `52:54:00:aa:00:${String(i + 1).padStart(2, '0')}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (what: string, check: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await sleep(50);
  }
};

describe('site power jobs against ipmi_sim', { timeout: 240_000 }, () => {
  let net: NamespacePair;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let store: Store;
  let jobs: JobRunner;
  let worker: ChildProcess | undefined;
  const sims = new Map<string, IpmiSim>();
  const on = () => HOSTS.filter((h) => sims.get(h)!.power() === 'on');

  /** The worker's BMC work in the management namespace; resolves once it is up. */
  const startWorker = async (): Promise<ChildProcess> => {
    const output: string[] = [];
    const child = net.client.spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        WORKER,
        JSON.stringify({
          databaseUrl: viaUnixSocket(database.url),
          // A dead BMC fails after 0.2 + 0.4 s instead of the default 7 s.
          ipmi: { timeoutMs: 200, attempts: 2 },
          poller: { intervalMs: 1500, perSecond: 20, tickMs: 200 },
          tickMs: 100,
          offPollMs: 200,
          leaseMs: 3000,
        }),
      ],
      { env: { ...process.env, KVMT_SECRET_KEY: KEY.toString('base64') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    await waitFor('the worker to start', () => output.join('').includes('ready') || child.exitCode !== null, 60_000);
    if (!output.join('').includes('ready')) throw new Error(`the worker did not start: ${output.join('')}`);
    return child;
  };

  before(async () => {
    net = await createNamespacePair('spw');
    database = await createPostgresDatabase();
    store = await openStore({ databaseUrl: database.url });
    jobs = new JobRunner(store.db, {} as VmService, { work: false });
    await createSite(store.db, { name: 'lab', buildCap: 1 });
    await createNetwork(store.db, { name: 'n1', site: 'lab', cidr: '10.99.0.0/24' });
    await createProfile(store.db, { name: 'rhel9', os: 'rhel9', installTreeUrl: 'http://mirror.test/rhel9/' });
    for (const [i, hostname] of [...HOSTS, DEAD].entries()) {
      await createHost(store.db, { hostname, macs: [mac(i)], network: 'n1', profile: 'rhel9' });
      const sim =
        hostname === DEAD ? undefined : await startIpmiSim(net.server, { port: 623 + i, password: `Pw-${hostname}-1` });
      if (sim) sims.set(hostname, sim);
      await setHostBmc(store.db, () => ring, hostname, {
        type: 'ipmi',
        address: `${net.server.ip}:${sim?.port ?? 1999}`, // nothing listens on 1999
        username: 'admin',
        password: sim?.password ?? 'Pw-dead-1',
      });
    }
    worker = await startWorker();
  });
  after(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await Promise.race([new Promise((r) => worker!.once('exit', r)), sleep(5000)]);
      if (worker.exitCode === null) worker.kill('SIGKILL');
    }
    for (const sim of sims.values()) await sim.stop();
    await store?.close();
    await database?.drop();
    await net?.cleanup();
  });

  const building = async (hostname: string) => {
    const host = await findBootHost(store.db, mac([...HOSTS, DEAD].indexOf(hostname)));
    const admission = await admit(store.db, host!, DEFAULT_BUILD_POLICY);
    assert.equal(admission.admitted, true, `${hostname} admitted`);
  };
  const built = (hostname: string) => operatorMarkBuilt(store.db, hostname, 'test');
  /** Nothing more is powered on for a while (the job holds off). */
  const holds = async (expected: string[], ms = 1200) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      assert.deepEqual(on(), expected);
      await sleep(100);
    }
  };

  test('power-on with a build cap of 1: one host at a time as the slot frees; a dead BMC is reported, the rest go on', async () => {
    const queued = await startSitePower(
      store.db,
      jobs,
      { site: 'lab', action: 'on', margin: 0, ratePerMinute: 600, maxParallel: 4 },
      'test',
    );
    assert.equal(queued.kind, 'site-power-on');
    assert.equal(queued.total, 5);
    await waitFor('hv1 on', () => sims.get('hv1')!.power() === 'on');
    await holds(['hv1']); // hv1 is powered on and not building: no room for another
    await building('hv1');
    await holds(['hv1']); // building: the one slot is taken
    await built('hv1');
    await waitFor('hv2 on', () => sims.get('hv2')!.power() === 'on');
    await holds(['hv1', 'hv2']);
    await building('hv2');
    await built('hv2');
    // hv2-dead's BMC does not answer: reported, and hv3 is powered on right after.
    await waitFor('hv3 on', () => sims.get('hv3')!.power() === 'on');
    await holds(['hv1', 'hv2', 'hv3']);
    await building('hv3');
    await built('hv3');
    await waitFor('hv4 on', () => sims.get('hv4')!.power() === 'on');
    const job = await waitFor('the job to end', async () => (await jobs.get(queued.id)).state !== 'running', 10_000)
      .then(() => jobs.get(queued.id))
      .then((j: Job) => j);
    assert.equal(job.state, 'partial');
    assert.equal(job.done, 5);
    assert.equal(job.failed, 1);
    assert.deepEqual(
      job.results.map((r) => [r.name, r.ok, r.code ?? null]),
      [
        ['hv1', true, null],
        ['hv2', true, null],
        [DEAD, false, 'KVMF_ERR_BMC_UNREACHABLE'],
        ['hv3', true, null],
        ['hv4', true, null],
      ],
    );
    const dead = job.results.find((r) => r.name === DEAD)!;
    assert.equal(dead.hypervisor, `${net.server.ip}:1999`);
    assert.match(dead.error!, /hv2-dead/);
    for (const sim of sims.values()) assert.ok(sim.record().includes('power 1'));
    // What the calls read is stored as the host's power state.
    const states = await store.db
      .selectFrom('hosts')
      .select(['hostname', 'power_state'])
      .where('hostname', 'in', HOSTS)
      .execute();
    assert.ok(
      states.every((s) => s.power_state === 'on'),
      JSON.stringify(states),
    );
  });

  test('power-off: a soft shutdown, then hard after the timeout; a host already off is left alone', async () => {
    sims.get('hv4')!.setPower('off');
    const before = new Map(HOSTS.map((h) => [h, sims.get(h)!.record().length]));
    const queued = await startSitePower(
      store.db,
      jobs,
      { site: 'lab', action: 'off', softTimeoutS: 1, ratePerMinute: 6000, maxParallel: 8 },
      'test',
    );
    assert.equal(queued.total, 5, 'every state by default');
    const job = await jobs.wait(queued.id);
    assert.equal(job.state, 'partial');
    const byName = new Map(job.results.map((r) => [r.name, r]));
    for (const h of ['hv1', 'hv2', 'hv3']) {
      assert.equal(byName.get(h)!.ok, true);
      assert.equal(byName.get(h)!.detail, 'hard after 1 s (off)');
      // ipmi_sim's chassis control was asked for the ACPI shutdown first (the test script ignores it), then power off.
      assert.deepEqual(sims.get(h)!.record().slice(before.get(h)), ['shutdown 1', 'power 0'], h);
      assert.equal(sims.get(h)!.power(), 'off');
    }
    assert.equal(byName.get('hv4')!.detail, 'was off');
    assert.deepEqual(sims.get('hv4')!.record().slice(before.get('hv4')), [], 'nothing sent to a host already off');
    assert.equal(byName.get(DEAD)!.code, 'KVMF_ERR_BMC_UNREACHABLE');
  });

  test('the poller records a change made behind its back and the live event stream tells it', async () => {
    const hub = new EventHub(store.db, {}, 100);
    const seen: LiveEvent[] = [];
    hub.on('event', (e) => seen.push(e));
    await hub.start();
    try {
      sims.get('hv3')!.setPower('on'); // someone pressed the power button
      await waitFor(
        'a power event for hv3',
        () => seen.some((e) => e.type === 'host' && e.host === 'hv3' && e.kind === 'power'),
        15_000,
      );
      const event = seen.find((e) => e.type === 'host' && e.host === 'hv3' && e.kind === 'power')!;
      assert.deepEqual((event as { detail: unknown }).detail, { state: 'on', was: 'off' });
      const row = await store.db
        .selectFrom('hosts')
        .select(['power_state', 'power_checked_at', 'power_error'])
        .where('hostname', '=', 'hv3')
        .executeTakeFirstOrThrow();
      assert.equal(row.power_state, 'on');
      assert.equal(row.power_error, null);
      const dead = await store.db
        .selectFrom('hosts')
        .select(['power_state', 'power_error'])
        .where('hostname', '=', DEAD)
        .executeTakeFirstOrThrow();
      assert.deepEqual(dead, { power_state: 'unknown', power_error: 'KVMF_ERR_BMC_UNREACHABLE' });
      // Bounded: each host at most once per 1.5 s interval. Over 3 s no host's reading is renewed more than twice.
      const first = await checkedAt();
      const events = seen.length;
      await sleep(3000);
      const second = await checkedAt();
      for (const h of HOSTS) {
        const gap = second.get(h)! - first.get(h)!;
        assert.ok(gap === 0 || gap >= 1500, `${h} read again after ${gap} ms`);
      }
      assert.ok(
        seen.slice(events).every((e) => !(e.type === 'host' && e.kind === 'power')),
        'no change, no power event',
      );
    } finally {
      hub.stop();
    }
  });

  test('a worker SIGKILLed mid power-on: another resumes the job from its results when the lease runs out', async () => {
    for (const h of [...HOSTS, DEAD]) await requestRebuild(store.db, h, 'test');
    await updateSite(store.db, 'lab', { buildCap: 10 });
    for (const h of HOSTS) sims.get(h)!.setPower('off');
    const before = new Map(HOSTS.map((h) => [h, sims.get(h)!.record().length]));
    // 30 a minute: one host every 2 s, so the kill comes half-way.
    const queued = await startSitePower(store.db, jobs, { site: 'lab', action: 'on', ratePerMinute: 30 }, 'test');
    await waitFor('two results', async () => (await jobs.get(queued.id)).done >= 2, 20_000);
    worker!.kill('SIGKILL');
    await new Promise((r) => worker!.once('exit', r));
    const half = await jobs.get(queued.id);
    assert.equal(half.state, 'running');
    assert.ok(half.done < 5, `${half.done} done before the kill`);
    worker = await startWorker();
    const job = await jobs.wait(queued.id);
    assert.equal(job.state, 'partial');
    assert.deepEqual(job.results.map((r) => r.name).sort(), [...HOSTS, DEAD].sort(), 'one result per host');
    assert.equal(job.results.find((r) => r.name === DEAD)!.code, 'KVMF_ERR_BMC_UNREACHABLE');
    const attempts = await store.db
      .selectFrom('jobs')
      .select('attempts')
      .where('id', '=', queued.id)
      .executeTakeFirstOrThrow();
    assert.equal(attempts.attempts, 2, 'claimed again after the lease ran out');
    for (const h of HOSTS) {
      assert.equal(sims.get(h)!.power(), 'on', h);
      // A host whose call was under way at the kill may be powered on twice (harmless); none is skipped.
      const sent = sims
        .get(h)!
        .record()
        .slice(before.get(h))
        .filter((line) => line === 'power 1').length;
      assert.ok(sent >= 1 && sent <= 2, `${h}: ${sent}`);
    }
  });

  const checkedAt = async () =>
    new Map(
      (
        await store.db
          .selectFrom('hosts')
          .select(['hostname', 'power_checked_at'])
          .where('hostname', 'in', HOSTS)
          .execute()
      ).map((r) => [r.hostname, r.power_checked_at!.getTime()]),
    );
});
