/**
 * Installs are not lost: the build timeout runs on its own clock (a sweep, in the database's time),
 * a late callback with the build's current token still ends the host built, and an operator can
 * mark a host built through the API (audited, on its timeline). On both stores.
 */
import assert from 'node:assert/strict';
import { after, before, mock, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { buildApi } from '../../src/api/app.ts';
import { hostTimeline, requestRebuild, startBuildTimeoutSweep, sweepBuildTimeouts } from '../../src/fleet/builds.ts';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { getHost, listHosts } from '../../src/fleet/hosts.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { listHypervisors } from '../../src/vms/hypervisors.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

const HOUR = 3600_000;
const policy = { buildTimeoutMs: HOUR, retrySeconds: 30 };

describeEachStore('build timeout and late callbacks', (ctx) => {
  let http: FastifyInstance;
  let api: FastifyInstance;
  before(async () => {
    const boot = new BootService({ db: ctx.store.db, templates: new KickstartTemplates(), policy });
    http = await buildBootHttp({ store: ctx.store, boot });
    api = await buildApi({ store: ctx.store, boot, bootBaseUrl: 'http://boot.test:8081' });
  });
  after(async () => {
    await http.close();
    await api.close();
  });

  const seed = async (hosts: number) => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: hosts });
    await importSiteYaml(ctx.store.db, yaml);
    await importHostsCsv(ctx.store.db, csv);
    return (await listHosts(ctx.store.db)).sort((a, b) => a.hostname.localeCompare(b.hostname));
  };
  /** The machine asks for its script from its own address: a build starts (or its token rotates). */
  const startBuild = async (host: { ip: string | null; macs: readonly string[] }) => {
    const r = await http.inject({
      method: 'GET',
      url: `/boot/${host.macs[0]!.replace(/:/g, '-')}?platform=pcbios`,
      headers: { host: 'boot.test:8081' },
      remoteAddress: host.ip!,
    });
    const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(r.body)?.[1];
    assert.ok(token, r.body);
    return token;
  };
  const callback = async (token: string) =>
    (await http.inject({ method: 'POST', url: `/boot/built/${token}`, headers: { host: 'boot.test:8081' } }))
      .statusCode;
  /** Moves a build's start back in the database's own time. */
  const startedAgo = (hostname: string, minutes: number) =>
    sql`update hosts set build_started_at = now() - make_interval(mins => ${minutes}) where hostname = ${hostname}`.execute(
      ctx.store.db,
    );
  const state = async (hostname: string) => (await getHost(ctx.store.db, hostname)).buildState;
  const kinds = async (hostname: string) => (await hostTimeline(ctx.store.db, hostname)).map((e) => e.kind);

  test('a build past its deadline fails at the next sweep, with no other host admitted', async () => {
    const [a, b] = await seed(2);
    await startBuild(a!);
    await startBuild(b!);
    await startedAgo(a!.hostname, 61);
    await startedAgo(b!.hostname, 59);
    const sweep = startBuildTimeoutSweep(ctx.store.db, policy, (error) => assert.fail(String(error)), 20);
    try {
      const deadline = Date.now() + 5000;
      while ((await state(a!.hostname)) !== 'failed' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
    } finally {
      await sweep.stop();
    }
    assert.equal(await state(a!.hostname), 'failed');
    assert.equal(await state(b!.hostname), 'building', 'one minute left: not yet');
    const failed = (await hostTimeline(ctx.store.db, a!.hostname)).filter((e) => e.kind === 'build-failed');
    assert.equal(failed.length, 1, 'failed once, however many sweeps ran');
    assert.deepEqual(failed[0]!.detail, { reason: 'timeout', timeoutMs: HOUR });
  });

  // Only PostgreSQL has a clock of its own: the embedded store's now() is this process's clock
  // (PGlite's libc reads Date.now()), so there the app and the database cannot disagree.
  if (ctx.backend === 'postgresql') {
    test('the deadline is in database time: the app clock two hours off either way changes nothing', async () => {
      const [a, b] = await seed(2);
      await startBuild(a!);
      await startBuild(b!);
      await startedAgo(a!.hostname, 59);
      await startedAgo(b!.hostname, 61);
      mock.timers.enable({ apis: ['Date'], now: Date.now() + 2 * HOUR });
      try {
        assert.equal(await sweepBuildTimeouts(ctx.store.db, policy), 1);
      } finally {
        mock.timers.reset();
      }
      mock.timers.enable({ apis: ['Date'], now: Date.now() - 2 * HOUR });
      try {
        assert.equal(await sweepBuildTimeouts(ctx.store.db, policy), 0);
      } finally {
        mock.timers.reset();
      }
      assert.equal(await state(a!.hostname), 'building');
      assert.equal(await state(b!.hostname), 'failed');
    });

    test("admission expires its site's stale builds in database time too", async () => {
      const [a, b] = await seed(2);
      await sql`update sites set build_cap = 1`.execute(ctx.store.db);
      await startBuild(a!);
      await startedAgo(a!.hostname, 59);
      // The app's clock runs two hours ahead: the old comparison took a's build for stale and let b in.
      mock.timers.enable({ apis: ['Date'], now: Date.now() + 2 * HOUR });
      let script: string;
      try {
        script = (
          await http.inject({
            method: 'GET',
            url: `/boot/${b!.macs[0]!.replace(/:/g, '-')}`,
            headers: { host: 'boot.test:8081' },
            remoteAddress: b!.ip!,
          })
        ).body;
      } finally {
        mock.timers.reset();
      }
      assert.doesNotMatch(script, /\/boot\/ks\//, 'the site is at its cap: b waits');
      assert.equal(await state(a!.hostname), 'building');
    });
  }

  test('sweeps on two connections at once fail each build once', async () => {
    const hosts = await seed(6);
    for (const h of hosts) await startBuild(h);
    await sql`update hosts set build_started_at = now() - make_interval(mins => 90)`.execute(ctx.store.db);
    const counts = await Promise.all([
      sweepBuildTimeouts(ctx.store.db, policy),
      sweepBuildTimeouts(ctx.store.db, policy),
      sweepBuildTimeouts(ctx.store.db, policy),
    ]);
    assert.equal(
      counts.reduce((x, y) => x + y, 0),
      6,
    );
    const { n } = await ctx.store.db
      .selectFrom('host_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'build-failed')
      .executeTakeFirstOrThrow();
    assert.equal(Number(n), 6);
  });

  test('a late callback with the current token ends the host built, registered, and says it was late', async () => {
    const [a] = await seed(1);
    const token = await startBuild(a!);
    await startedAgo(a!.hostname, 200);
    assert.equal(await sweepBuildTimeouts(ctx.store.db, policy), 1);
    assert.equal(await state(a!.hostname), 'failed');
    assert.equal(await callback(token), 200);
    assert.equal(await state(a!.hostname), 'built');
    const built = (await hostTimeline(ctx.store.db, a!.hostname)).filter((e) => e.kind === 'built');
    assert.equal(built.length, 1);
    assert.equal(built[0]!.detail.late, true);
    assert.equal(typeof built[0]!.detail.failedAt, 'string');
    const hv = (await listHypervisors(ctx.store.db)).find((h) => h.name === a!.hostname);
    assert.equal(hv?.uri, `qemu+ssh://root@${a!.ip}/system`);
    assert.equal(await callback(token), 403, 'the token is spent');
  });

  test("an older build's token is refused after the timeout, and after a rebuild so is the last one", async () => {
    const [a] = await seed(1);
    const first = await startBuild(a!);
    const second = await startBuild(a!); // the machine rebooted mid-install: a new token
    assert.notEqual(first, second);
    await startedAgo(a!.hostname, 200);
    await sweepBuildTimeouts(ctx.store.db, policy);
    assert.equal(await callback(first), 403);
    assert.equal(await state(a!.hostname), 'failed');
    await requestRebuild(ctx.store.db, a!.hostname, 'test');
    assert.equal(await callback(second), 403, "a rebuild starts a new build: the failed one's token is dead");
    assert.equal(await state(a!.hostname), 'ready');
    assert.ok(!(await kinds(a!.hostname)).includes('built'));
  });

  test('the boot files and Kickstart of a timed-out build are refused (only its callback may be late)', async () => {
    const [a] = await seed(1);
    const token = await startBuild(a!);
    await startedAgo(a!.hostname, 200);
    await sweepBuildTimeouts(ctx.store.db, policy);
    assert.equal(
      (await http.inject({ method: 'GET', url: `/boot/ks/${token}`, headers: { host: 'boot.test:8081' } })).statusCode,
      403,
    );
  });

  const markBuilt = (name: string) => api.inject({ method: 'POST', url: `/api/v1/hosts/${name}/mark-built` });

  test('host mark-built: a failed host ends built, audited, on its timeline, its hypervisor registered', async () => {
    const [a] = await seed(1);
    await startBuild(a!);
    await startedAgo(a!.hostname, 200);
    await sweepBuildTimeouts(ctx.store.db, policy);
    const r = await markBuilt(a!.hostname);
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json(), { hostname: a!.hostname, buildState: 'built', was: 'failed' });
    assert.equal(await state(a!.hostname), 'built');
    const built = (await hostTimeline(ctx.store.db, a!.hostname)).filter((e) => e.kind === 'built');
    assert.equal(built.length, 1);
    assert.deepEqual({ ...built[0]!.detail, by: undefined }, { by: undefined, manual: true, was: 'failed' });
    assert.equal(typeof built[0]!.detail.by, 'string');
    const audit = await ctx.store.db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'POST /api/v1/hosts/:name/mark-built')
      .execute();
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.target, a!.hostname);
    assert.equal(audit[0]!.result, '200');
    assert.ok((await listHypervisors(ctx.store.db)).some((h) => h.name === a!.hostname));
  });

  test('host mark-built of a building host spends its token; 409 when ready, built or discovered; 404 unknown', async () => {
    const [a, b] = await seed(2);
    const token = await startBuild(a!);
    assert.equal((await markBuilt(a!.hostname)).statusCode, 200);
    assert.equal(await callback(token), 403, 'its token is spent');
    const again = await markBuilt(a!.hostname);
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'KVMF_ERR_WRONG_BUILD_STATE');
    assert.equal((await markBuilt(b!.hostname)).statusCode, 409, 'ready: nothing was installed');
    assert.equal(await state(b!.hostname), 'ready');
    assert.equal((await markBuilt('nosuch.example.com')).statusCode, 404);
    const doc = (await api.inject({ method: 'GET', url: '/openapi.json' })).json();
    const op = doc.paths['/api/v1/hosts/{name}/mark-built'].post;
    assert.equal(op.operationId, 'postApiV1HostsNameMarkBuilt');
    assert.ok(op.responses['200'] && op.responses['409'] && op.responses['404']);
  });
});
