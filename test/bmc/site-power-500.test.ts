/**
 * Site power-on at scale: KVMT_BMC_COUNT (default 500) real ipmi_sim BMCs in one namespace, one
 * per UDP port, and one dead BMC (nothing listens), powered on by one `site power-on --rate` job
 * run by the worker's BMC work in the management namespace (test/bmc/power-worker.ts).
 * Checked: every host has a result, the dead BMC's is KVMF_ERR_BMC_UNREACHABLE, every other BMC
 * was powered on exactly once, and no window of the run powered on more than the rate allows.
 * The figures (count, rate, wall time, memory of the BMCs, failures) are printed as one
 * `site-power-500 {…}` line and written to /tmp/kvmfleet-site-power-500.json.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { setHostBmc } from '../../src/bmc/credentials.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { startSitePower } from '../../src/bmc/site-power.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createProfile } from '../../src/fleet/profiles.ts';
import { createSite } from '../../src/fleet/sites.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import type { VmService } from '../../src/vms/vm-service.ts';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { createPostgresDatabase, viaUnixSocket } from '../helpers/stores.ts';
import { startIpmiSim, type IpmiSim } from './ipmi-sim.ts';

const COUNT = Number(process.env.KVMT_BMC_COUNT ?? 500);
const RATE = Number(process.env.KVMT_BMC_RATE ?? 3000); // a minute: 50 a second
const MAX_PARALLEL = 32;
const WORKER = new URL('./power-worker.ts', import.meta.url).pathname;
const KEY = randomBytes(32);
const ring = keyringOf([KEY]);
const name = (i: number) => `hv${String(i).padStart(4, '0')}`;
const DEAD = 'hv-dead';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory of every process in the namespace (the ipmi_sim servers), in MiB. */
function rssMiB(namespace: string): number {
  const pids = execFileSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' }).split('\n').filter(Boolean);
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return Math.round(kib / 1024);
}

describe(`site power-on of ${COUNT} ipmi_sim BMCs and a dead one`, { timeout: 900_000 }, () => {
  let net: NamespacePair;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let store: Store;
  let worker: ChildProcess | undefined;
  const sims: IpmiSim[] = [];
  let startSeconds = 0;

  before(async () => {
    net = await createNamespacePair('sp5');
    database = await createPostgresDatabase();
    store = await openStore({ databaseUrl: database.url });
    await createSite(store.db, { name: 'big', buildCap: 10_000 });
    await createNetwork(store.db, { name: 'big-hv', site: 'big', cidr: '10.98.0.0/16' });
    await createProfile(store.db, { name: 'rhel9', os: 'rhel9', installTreeUrl: 'http://mirror.test/rhel9/' });
    const started = Date.now();
    // 25 at a time: each start waits for its server to listen.
    for (let i = 0; i < COUNT; i += 25) {
      const batch = Array.from({ length: Math.min(25, COUNT - i) }, (_, j) =>
        startIpmiSim(net.server, { port: 10_000 + i + j, password: 'Pw-scale-0417' }),
      );
      sims.push(...(await Promise.all(batch)));
    }
    startSeconds = (Date.now() - started) / 1000;
    for (let i = 0; i <= COUNT; i++) {
      const hostname = i === COUNT ? DEAD : name(i);
      const mac = `52:54:01:${[i >> 16, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      await createHost(store.db, { hostname, macs: [mac], network: 'big-hv', profile: 'rhel9' });
      await setHostBmc(store.db, () => ring, hostname, {
        type: 'ipmi',
        address: `${net.server.ip}:${i === COUNT ? 9999 : sims[i]!.port}`,
        username: 'admin',
        password: 'Pw-scale-0417',
      });
    }
    const output: string[] = [];
    worker = net.client.spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        WORKER,
        JSON.stringify({
          databaseUrl: viaUnixSocket(database.url),
          ipmi: { timeoutMs: 500, attempts: 2 },
          poller: false,
        }),
      ],
      { env: { ...process.env, KVMT_SECRET_KEY: KEY.toString('base64') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    worker.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
    worker.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
    for (let waited = 0; !output.join('').includes('ready'); waited += 100) {
      if (waited > 60_000 || worker.exitCode !== null) throw new Error(`the worker did not start: ${output.join('')}`);
      await sleep(100);
    }
  });
  after(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await Promise.race([new Promise((r) => worker!.once('exit', r)), sleep(5000)]);
      if (worker.exitCode === null) worker.kill('SIGKILL');
    }
    await Promise.all(sims.map((s) => s.stop()));
    await store?.close();
    await database?.drop();
    await net?.cleanup();
  });

  test(`--rate ${RATE}/min: the rate honoured, every host a result, the dead BMC reported`, async () => {
    const memory = rssMiB(net.server.name);
    const jobs = new JobRunner(store.db, {} as VmService, { work: false });
    const t0 = Date.now();
    const queued = await startSitePower(
      store.db,
      jobs,
      { site: 'big', action: 'on', ratePerMinute: RATE, maxParallel: MAX_PARALLEL },
      'test',
    );
    assert.equal(queued.total, COUNT + 1);
    const job = await jobs.wait(queued.id, 200);
    const wallS = (Date.now() - t0) / 1000;
    assert.equal(job.state, 'partial');
    assert.equal(job.results.length, COUNT + 1, 'every host has a result');
    assert.equal(new Set(job.results.map((r) => r.name)).size, COUNT + 1);
    const failed = job.results.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => [r.name, r.code]),
      [[DEAD, 'KVMF_ERR_BMC_UNREACHABLE']],
    );
    for (const sim of sims) assert.deepEqual(sim.record(), ['power 1'], `${sim.port} powered on once`);

    // When each host went on (its power event, written as its call returned), in the store's clock.
    const { rows } = await sql<{ ms: string }>`
      select extract(epoch from min(e.at)) * 1000 as ms from host_events e
      where e.kind = 'power' and e.detail->>'state' = 'on' group by e.host_id order by 1`.execute(store.db);
    const times = rows.map((r) => Number(r.ms));
    assert.equal(times.length, COUNT);
    // Never faster than the rate: in any window of W seconds at most rate·W/60 calls start, plus the
    // half second of tokens the job may save up (site-power.ts), and a call's answer may come up to
    // its own duration later (at most the calls in parallel were under way when the window opened).
    const W = 5_000;
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! > W) j++;
      most = Math.max(most, i - j + 1);
    }
    const burst = Math.min(MAX_PARALLEL, Math.max(1, Math.floor(RATE / 120)));
    const allowed = (RATE * W) / 60_000 + burst + MAX_PARALLEL;
    assert.ok(most <= allowed, `${most} powered on within ${W} ms (the rate allows ${allowed})`);
    const minimumS = ((COUNT + 1 - burst) * 60) / RATE; // the first `burst` at once, then at the rate
    assert.ok(wallS >= minimumS, `the job took ${wallS} s, less than the rate allows (${minimumS} s)`);
    const figures = {
      bmcs: COUNT,
      dead: 1,
      ratePerMinute: RATE,
      maxParallel: MAX_PARALLEL,
      wallSeconds: Number(wallS.toFixed(1)),
      minimumSeconds: minimumS,
      achievedPerMinute: Math.round(((COUNT + 1) / wallS) * 60),
      most5s: most,
      allowed5s: allowed,
      failures: failed.length,
      maxCallMs: Math.max(...job.results.filter((r) => r.ok).map((r) => r.ms)),
      deadMs: failed[0]?.ms,
      ipmiSimRssMiB: memory,
      ipmiSimStartSeconds: Number(startSeconds.toFixed(1)),
    };
    console.log(`site-power-500 ${JSON.stringify(figures)}`);
    writeFileSync('/tmp/kvmfleet-site-power-500.json', `${JSON.stringify(figures, null, 2)}\n`);
  });
});
