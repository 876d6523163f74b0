/**
 * The boot HTTP role through Fastify's inject (no sockets): scripts, tokens, callbacks, install
 * trees with Range/ETag, and admission control with a cap of 10 and 50 machines.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { requestRebuild, siteBuilds } from '../../src/fleet/builds.ts';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { countHostsByState, createHost, getHost, listHosts } from '../../src/fleet/hosts.ts';
import { updateSite } from '../../src/fleet/sites.ts';
import { listHypervisors } from '../../src/vms/hypervisors.ts';
import { adoptHost } from '../../src/fleet/adopt.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

const trees = mkdtempSync(join(tmpdir(), 'kvt-trees-'));
mkdirSync(join(trees, 'rhel9', 'images', 'pxeboot'), { recursive: true });
const kernelBytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
writeFileSync(join(trees, 'rhel9', 'images', 'pxeboot', 'vmlinuz'), kernelBytes);
writeFileSync(join(trees, '.hidden'), 'no');
after(() => rmSync(trees, { recursive: true, force: true }));

describeEachStore('boot HTTP', (ctx) => {
  let app: FastifyInstance;
  let boot: BootService;
  before(async () => {
    boot = new BootService({
      db: ctx.store.db,
      templates: new KickstartTemplates(),
      policy: { buildTimeoutMs: 3600_000, retrySeconds: 30 },
    });
    app = await buildBootHttp({ store: ctx.store, boot, treesDir: trees });
  });
  after(() => app.close());

  const get = async (url: string, headers: Record<string, string> = {}, from?: string) => {
    const r = await app.inject({
      method: 'GET',
      url,
      headers: { host: 'boot.test:8081', ...headers },
      ...(from ? { remoteAddress: from } : {}),
    });
    return { status: r.statusCode, body: r.body, headers: r.headers, raw: r.rawPayload };
  };
  /** A machine's own request: from its reserved address (a MAC alone gets no install). */
  const fromHost = (host: { ip: string | null }, url: string) => get(url, {}, host.ip!);
  const post = async (url: string, form?: string) => {
    const headers = {
      host: 'boot.test:8081',
      ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
    };
    const r = await app.inject({ method: 'POST', url, headers, ...(form === undefined ? {} : { payload: form }) });
    return { status: r.statusCode, body: r.body };
  };
  const tokenOf = (script: string) => /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(script)?.[1];

  const seed = async (hosts: number, cap: number) => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: hosts });
    await importSiteYaml(
      ctx.store.db,
      yaml.replace('http://boot.example.com/trees/rhel9', 'http://boot.test:8081/trees/rhel9'),
    );
    await importHostsCsv(ctx.store.db, csv);
    await updateSite(ctx.store.db, 'site1', { buildCap: cap });
    return (await listHosts(ctx.store.db)).sort((a, b) => a.hostname.localeCompare(b.hostname));
  };

  test('full lifecycle: install script → kernel → Kickstart → callback → local disk → rebuild', async () => {
    const [host] = await seed(1, 5);
    const mac = host!.macs[0]!.replace(/:/g, '-');
    const first = await fromHost(host!, `/boot/${mac}?platform=pcbios`);
    assert.equal(first.status, 200);
    assert.match(first.body, /^#!ipxe\n/);
    assert.match(first.body, /inst\.repo=http:\/\/boot\.test:8081\/trees\/rhel9 ip=dhcp BOOTIF=01-52-54-00/);
    const token = tokenOf(first.body)!;
    assert.ok(token);
    assert.equal((await getHost(ctx.store.db, host!.hostname)).buildState, 'building');

    const kernel = await get(`/boot/files/${token}/kernel`);
    assert.equal(kernel.status, 302);
    assert.equal(kernel.headers.location, 'http://boot.test:8081/trees/rhel9/images/pxeboot/vmlinuz');
    const ks = await get(`/boot/ks/${token}`);
    assert.equal(ks.status, 200);
    assert.match(ks.body, /^network --bootproto=static .*--ip=10\.1\.0\.20 /m);
    assert.match(ks.body, new RegExp(`-X POST http://boot.test:8081/boot/built/${token}`));

    // Asking again (the machine rebooted mid-install) issues a new token; the old one is dead.
    const again = await fromHost(host!, `/boot/${mac}?platform=pcbios`);
    const token2 = tokenOf(again.body)!;
    assert.notEqual(token2, token);
    const old = await get(`/boot/ks/${token}`);
    assert.equal(old.status, 403);
    assert.equal(old.body, 'forbidden\n', 'no secret in a refusal');
    assert.equal((await get('/boot/ks/not-a-token-at-all-x')).status, 403);
    assert.equal((await post(`/boot/built/${token}`)).status, 403);

    // As busybox wget --post-data '' calls back: a form content type (curl -X POST sends none).
    assert.equal((await post(`/boot/built/${token2}`, '')).status, 200);
    assert.equal((await getHost(ctx.store.db, host!.hostname)).buildState, 'built');
    // A built host joins its site's hypervisors, to be reached over SSH at its reserved address.
    const [hv] = (await listHypervisors(ctx.store.db)).filter((h) => h.name === host!.hostname);
    assert.equal(hv?.uri, 'qemu+ssh://root@10.1.0.20/system');
    assert.equal(hv?.health, 'unknown');
    assert.equal((await post(`/boot/built/${token2}`)).status, 403, 'a token is spent by the callback');
    assert.equal((await get(`/boot/ks/${token2}`)).status, 403);

    const bios = await get(`/boot/${mac}?platform=pcbios`);
    assert.match(bios.body, /sanboot --no-describe --drive 0x80/);
    assert.doesNotMatch(bios.body, /kernel /);
    assert.match((await get(`/boot/${mac}?platform=efi`)).body, /\nexit\n$/);

    await requestRebuild(ctx.store.db, host!.hostname, 'test');
    assert.match((await fromHost(host!, `/boot/${mac}?platform=efi`)).body, /^kernel /m);

    const kinds = (await boot.preview(host!.hostname, 'http://x', 'efi')).decision.action;
    assert.equal(kinds, 'install');
    const { hostTimeline } = await import('../../src/fleet/builds.ts');
    const timeline = (await hostTimeline(ctx.store.db, host!.hostname)).map((e) => e.kind);
    assert.deepEqual(timeline.slice(0, 6), ['build-started', 'script', 'kernel', 'kickstart', 'script', 'built']);
    assert.ok(timeline.includes('rebuild-requested'));
  });

  test('an unknown MAC is registered as discovered on the network of its address and told to wait', async () => {
    await seed(1, 5);
    const r = await app.inject({
      method: 'GET',
      url: '/boot/aa-bb-cc-00-11-22',
      remoteAddress: '10.1.3.77',
      headers: { host: 'boot.test' },
    });
    assert.match(r.body, /registered as discovered|waiting to be adopted/);
    assert.match(
      r.body,
      /chain --replace --autofree http:\/\/boot\.test\/boot\/\$\{mac:hexhyp\}\?platform=\$\{platform\}/,
    );
    const [discovered] = await listHosts(ctx.store.db, { state: 'discovered' });
    assert.equal(discovered!.hostname, 'discovered-aabbcc001122');
    assert.equal(discovered!.network, 'site1-hv0');
    assert.equal((await get('/boot/aa-bb-cc-00-11-22')).status, 200, 'asking again does not register twice');
    assert.equal((await listHosts(ctx.store.db, { state: 'discovered' })).length, 1);
    assert.equal((await get('/boot/not-a-mac')).status, 400);
  });

  test('adopting a discovered machine keeps its timeline, checks its identity, and makes it install at its next retry', async () => {
    const hosts = await seed(2, 1);
    const r = await app.inject({
      method: 'GET',
      url: '/boot/aa-bb-cc-00-11-33',
      remoteAddress: '10.1.3.78',
      headers: { host: 'boot.test' },
    });
    assert.equal(r.statusCode, 200);
    await assert.rejects(
      adoptHost(
        ctx.store.db,
        'discovered-aabbcc001133',
        { hostname: hosts[0]!.hostname, profile: 'rhel9-kvm' },
        'test',
      ),
      { code: 'KVMF_ERR_DUPLICATE_HOSTNAME' },
    );
    await assert.rejects(
      adoptHost(
        ctx.store.db,
        'discovered-aabbcc001133',
        { hostname: 'new1.site1.example.com', profile: 'no-such' },
        'test',
      ),
      { code: 'KVMF_ERR_UNKNOWN_PROFILE' },
    );
    await assert.rejects(
      adoptHost(
        ctx.store.db,
        'discovered-aabbcc001133',
        { hostname: 'new1.site1.example.com', profile: 'rhel9-kvm', ip: hosts[0]!.ip },
        'test',
      ),
      { code: 'KVMF_ERR_DUPLICATE_IP' },
    );
    await assert.rejects(
      adoptHost(ctx.store.db, hosts[0]!.hostname, { hostname: 'x.site1.example.com', profile: 'rhel9-kvm' }, 'test'),
      { code: 'KVMF_ERR_IN_USE' },
    );
    assert.equal(
      (await listHosts(ctx.store.db, { state: 'discovered' }))[0]?.hostname,
      'discovered-aabbcc001133',
      'a refused adoption changes nothing',
    );

    const adopted = await adoptHost(
      ctx.store.db,
      'discovered-aabbcc001133',
      { hostname: 'New1.site1.example.com', profile: 'rhel9-kvm', ip: '10.1.0.200' },
      'test',
    );
    assert.equal(adopted.hostname, 'new1.site1.example.com');
    assert.equal(adopted.network, 'site1-hv0', 'the network it was discovered on');
    assert.deepEqual(adopted.macs, ['aa:bb:cc:00:11:33']);
    assert.equal(adopted.buildState, 'ready');
    // The site cap is 1: the adopted machine builds; a second asking is queued.
    assert.match((await get('/boot/aa-bb-cc-00-11-33?platform=efi', {}, '10.1.0.200')).body, /^kernel /m);
    assert.match(
      (await fromHost(hosts[0]!, `/boot/${hosts[0]!.macs[0]!.replace(/:/g, '-')}?platform=efi`)).body,
      /build cap: .* number 1 in the queue/,
    );
    const { hostTimeline, buildProgress } = await import('../../src/fleet/builds.ts');
    assert.deepEqual((await hostTimeline(ctx.store.db, 'new1.site1.example.com')).map((e) => e.kind).slice(0, 4), [
      'discovered',
      'script',
      'adopted',
      'build-started',
    ]);
    const [progress] = await buildProgress(ctx.store.db, boot.policy);
    assert.deepEqual(progress, {
      site: 'site1',
      cap: 1,
      hosts: 3,
      counts: { discovered: 0, ready: 1, queued: 1, building: 1, built: 0, failed: 0 },
    });
  });

  test('boot by SMBIOS UUID: the host found by its first MAC (in its BOOTIF); unknown 404, malformed 400', async () => {
    await seed(1, 5);
    const uuid = '4c4c4544-0042-3510-8052-b4c04f4a4d31';
    await createHost(ctx.store.db, {
      hostname: 'byuuid.site1.example.com',
      macs: ['52:54:00:ee:00:02', '52:54:00:ee:00:01'],
      ip: '10.1.0.200',
      network: 'site1-hv0',
      profile: 'rhel9-kvm',
      smbiosUuid: uuid,
    });
    const r = await get(`/boot/uuid/${uuid.toUpperCase()}?platform=pcbios`, {}, '10.1.0.200');
    assert.equal(r.status, 200);
    assert.match(r.body, /BOOTIF=01-52-54-00-ee-00-02/, 'installs as its first MAC');
    assert.equal((await getHost(ctx.store.db, 'byuuid.site1.example.com')).buildState, 'building');
    // Back to ready, not queued: it holds none of site1's build slots in the tests after this one.
    await requestRebuild(ctx.store.db, 'byuuid.site1.example.com', 'test');
    const unknown = await get('/boot/uuid/00000000-0000-0000-0000-000000000000');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /boot by MAC/);
    assert.equal((await get('/boot/uuid/not-a-uuid')).status, 400);
  });

  test('/readyz: ready while the store answers', async () => {
    const r = await get('/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ready' });
  });

  test('install trees: whole file, Range, ETag revalidation, no dotfiles, no traversal', async () => {
    const whole = await get('/trees/rhel9/images/pxeboot/vmlinuz');
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.raw, kernelBytes);
    const range = await get('/trees/rhel9/images/pxeboot/vmlinuz', { range: 'bytes=100-199' });
    assert.equal(range.status, 206);
    assert.deepEqual(range.raw, kernelBytes.subarray(100, 200));
    assert.equal(range.headers['content-range'], 'bytes 100-199/4096');
    assert.ok(whole.headers.etag && whole.headers['last-modified']);
    assert.equal(
      (await get('/trees/rhel9/images/pxeboot/vmlinuz', { 'if-none-match': String(whole.headers.etag) })).status,
      304,
    );
    assert.equal((await get('/trees/rhel9/images/pxeboot/vmlinuz', { range: 'bytes=5000-6000' })).status, 416);
    assert.notEqual((await get('/trees/.hidden')).status, 200);
    for (const path of [
      '/trees/../package.json',
      '/trees/%2e%2e/package.json',
      '/trees/rhel9/../../etc/passwd',
      '/trees/..%2f..%2fetc%2fpasswd',
    ]) {
      const r = await get(path);
      assert.ok(r.status === 403 || r.status === 404 || r.status === 400, `${path} → ${r.status}`);
      assert.doesNotMatch(r.body, /"name": "kvmfleet"|root:/);
    }
  });

  test('admission: cap 10, 50 machines — never more than 10 building, the rest wait, all 50 finish', async () => {
    const hosts = await seed(50, 10);
    const tokens = new Map<string, string>();
    let maxBuilding = 0;
    let waits = 0;
    for (let round = 0; round < 20 && tokens.size + (await countHostsByState(ctx.store.db)).built < 50; round++) {
      for (const host of hosts) {
        const state = (await countHostsByState(ctx.store.db)).built;
        void state;
        if (tokens.has(host.hostname)) continue;
        const current = await getHost(ctx.store.db, host.hostname);
        if (current.buildState === 'built') continue;
        const r = await fromHost(host, `/boot/${host.macs[0]}?platform=efi`);
        const token = tokenOf(r.body);
        if (token) tokens.set(host.hostname, token);
        else {
          assert.match(r.body, /in the queue\nechokvmfleet|in the queue/);
          assert.match(r.body, /sleep 30/);
          waits++;
        }
        const counts = await countHostsByState(ctx.store.db);
        maxBuilding = Math.max(maxBuilding, counts.building);
        assert.ok(counts.building <= 10, `${counts.building} building`);
      }
      const queue = await siteBuilds(ctx.store.db, 'site1', boot.policy);
      assert.ok(queue.building.length <= 10);
      if (round === 0) assert.equal(queue.queued.length, 40, 'the other 40 are queued, in order');
      // Finish half of the running builds each round.
      let finished = 0;
      for (const [hostname, token] of [...tokens]) {
        if (finished++ >= 5) break;
        assert.equal((await post(`/boot/built/${token}`)).status, 200);
        tokens.delete(hostname);
      }
    }
    for (const [, token] of tokens) await post(`/boot/built/${token}`);
    assert.equal(maxBuilding, 10);
    assert.ok(waits >= 40);
    assert.equal((await countHostsByState(ctx.store.db)).built, 50);
  });
});
