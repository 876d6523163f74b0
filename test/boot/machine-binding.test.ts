/**
 * Build tokens are bound to the machine: GET /boot/{mac} starts a build and hands a token only to a
 * request from the host's reserved address or its current DHCP lease (or the address a trusted load
 * balancer forwards). From anywhere else: the wait script, no token, nothing changed — a building
 * host's token is not rotated. The callback registers the hypervisor at the inventory/lease address,
 * never the caller's. Real HTTP over loopback, from different 127.x source addresses.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { hostTimeline } from '../../src/fleet/builds.ts';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { parseTrustedProxies } from '../../src/boot/trusted-proxies.ts';
import { getHost } from '../../src/fleet/hosts.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { listHypervisors } from '../../src/vms/hypervisors.ts';
import { describeEachStore } from '../helpers/stores.ts';
import { rawRequest } from '../helpers/raw-http.ts';

const MACHINE = '127.77.0.10'; // ready.lab's reservation
const LEASED = '127.77.0.50'; // leased.lab's DHCP lease (it has no reservation)
const STRANGER = '127.0.0.1';
const BALANCER = '127.0.0.5';

const site =
  'sites:\n  - name: lab\n    buildCap: 10\n    networks:\n      - { name: lab-hv, cidr: 127.77.0.0/24 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab/trees/rhel9" }\n';
const hosts =
  'hostname,mac,ip,network,profile\nready.lab,52:54:00:77:00:10,127.77.0.10,lab-hv,rhel9\nleased.lab,52:54:00:77:00:50,,lab-hv,rhel9\n';

const tokenOf = (script: string) => /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(script)?.[1];

describeEachStore('build tokens bound to the machine', (ctx) => {
  let app: FastifyInstance;
  let port: number;
  // The store is emptied before each test (describeEachStore): each one seeds its inventory.
  const seed = async () => {
    await importSiteYaml(ctx.store.db, site);
    await importHostsCsv(ctx.store.db, hosts);
    const network = await ctx.store.db.selectFrom('networks').select('id').executeTakeFirstOrThrow();
    await ctx.store.db
      .insertInto('leases')
      .values({
        ip: LEASED,
        network_id: network.id,
        mac: '52:54:00:77:00:50',
        client_id: null,
        hostname: null,
        state: 'bound',
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
      })
      .execute();
  };
  before(async () => {
    const boot = new BootService({ db: ctx.store.db, templates: new KickstartTemplates() });
    app = await buildBootHttp({ store: ctx.store, boot, trustProxy: parseTrustedProxies(BALANCER) });
    await app.listen({ host: '0.0.0.0', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  after(() => app.close());

  const get = (target: string, from: string, headers: Record<string, string> = {}) =>
    rawRequest(port, { method: 'GET', target, localAddress: from, headers: { host: 'boot.lab', ...headers } });
  const post = (target: string, from: string) =>
    rawRequest(port, { method: 'POST', target, localAddress: from, headers: { host: 'boot.lab' } });

  test('a ready host asked for from another address: wait script, no token, state unchanged', async () => {
    await seed();
    for (const [from, headers] of [
      [STRANGER, {}],
      [STRANGER, { 'x-forwarded-for': MACHINE }],
      ['127.0.0.6', { 'x-forwarded-for': MACHINE, forwarded: `for=${MACHINE}` }],
    ] as const) {
      const reply = await get('/boot/52-54-00-77-00-10?platform=pcbios', from, headers);
      assert.equal(reply.status, 200);
      assert.equal(tokenOf(reply.body), undefined, `no token for ${from} ${JSON.stringify(headers)}`);
      assert.match(reply.body, /only when it asks from its own address/);
      assert.match(reply.body, /sleep 30/);
      assert.doesNotMatch(reply.body, /kernel /);
    }
    assert.equal((await getHost(ctx.store.db, 'ready.lab')).buildState, 'ready');
    assert.ok(!(await hostTimeline(ctx.store.db, 'ready.lab')).some((e) => e.kind === 'build-started'));
  });

  test('from its reserved address it builds; a stranger then neither gets nor rotates its token', async () => {
    await seed();
    const own = await get('/boot/52-54-00-77-00-10?platform=pcbios', MACHINE);
    const token = tokenOf(own.body);
    assert.ok(token, own.body);
    assert.equal((await getHost(ctx.store.db, 'ready.lab')).buildState, 'building');
    const stranger = await get('/boot/52-54-00-77-00-10?platform=pcbios', STRANGER);
    assert.equal(tokenOf(stranger.body), undefined);
    assert.equal((await get(`/boot/ks/${token}`, MACHINE)).status, 200, 'the first token still works');
    const built = await post(`/boot/built/${token}`, STRANGER);
    assert.equal(built.status, 200);
    const [hv] = (await listHypervisors(ctx.store.db)).filter((h) => h.name === 'ready.lab');
    assert.equal(hv?.uri, `qemu+ssh://root@${MACHINE}/system`, 'the reserved address, not the caller');
  });

  test('a host without reservation builds from its DHCP lease, and is registered there, not at the caller', async () => {
    await seed();
    assert.equal(tokenOf((await get('/boot/52-54-00-77-00-50', STRANGER)).body), undefined);
    // Through the trusted balancer: the forwarded address counts (the rightmost one it added).
    const viaBalancer = await get('/boot/52-54-00-77-00-50', BALANCER, { 'x-forwarded-for': LEASED });
    const token = tokenOf(viaBalancer.body);
    assert.ok(token, viaBalancer.body);
    assert.equal((await post(`/boot/built/${token}`, STRANGER)).status, 200);
    const [hv] = (await listHypervisors(ctx.store.db)).filter((h) => h.name === 'leased.lab');
    assert.equal(hv?.uri, `qemu+ssh://root@${LEASED}/system`);
  });

  test('--trust-proxy takes addresses and CIDRs, nothing else', () => {
    assert.deepEqual(parseTrustedProxies('10.1.0.5, 10.1.0.0/28,fd00::1'), ['10.1.0.5', '10.1.0.0/28', 'fd00::1']);
    for (const bad of ['', 'true', '10.1.0.0/33', 'lb.example.com', '10.1.0.5/24/1'])
      assert.throws(() => parseTrustedProxies(bad), /--trust-proxy/);
  });
});
