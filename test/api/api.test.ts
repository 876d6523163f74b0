import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { ErrorCode } from '../../src/errors.ts';
import { registerDiscovered } from '../../src/fleet/builds.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('REST API', (ctx) => {
  let app: FastifyInstance;
  before(async () => {
    const boot = new BootService({ db: ctx.store.db, templates: new KickstartTemplates() });
    app = await buildApi({ store: ctx.store, boot, bootBaseUrl: 'http://boot.test:8081' });
  });
  after(() => app.close());

  const call = async (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
    contentType?: string,
  ) => {
    const response = await app.inject({
      method,
      url,
      ...(payload !== undefined
        ? { payload: payload as string, headers: contentType ? { 'content-type': contentType } : {} }
        : {}),
    });
    return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
  };

  test('healthz and an OpenAPI 3 document that lists every route', async () => {
    assert.equal((await call('GET', '/healthz')).body.status, 'ok');
    const { status, body } = await call('GET', '/openapi.json');
    assert.equal(status, 200);
    assert.equal(body.openapi, '3.0.3');
    for (const path of [
      '/api/v1/sites',
      '/api/v1/sites/{name}',
      '/api/v1/networks',
      '/api/v1/hosts',
      '/api/v1/hosts/{name}',
      '/api/v1/profiles',
      '/api/v1/import/hosts',
      '/api/v1/import/site',
      '/api/v1/hosts/{name}/adopt',
      '/api/v1/build-progress',
      '/api/v1/logout',
    ]) {
      assert.ok(body.paths[path], `OpenAPI lacks ${path}`);
    }
    assert.ok(body.components.schemas.Host, 'named schemas');
    assert.ok(body.paths['/api/v1/hosts'].post.responses['409'], 'errors documented');
  });

  test('CRUD with coded errors', async () => {
    assert.equal((await call('POST', '/api/v1/sites', { name: 'dc1', buildCap: 4 })).status, 201);
    assert.deepEqual((await call('POST', '/api/v1/sites', { name: 'dc1' })).body.error.code, ErrorCode.AlreadyExists);
    assert.equal((await call('PATCH', '/api/v1/sites/dc1', { buildCap: 9 })).body.buildCap, 9);
    const net = await call('POST', '/api/v1/networks', {
      name: 'n1',
      site: 'dc1',
      cidr: '10.1.0.0/24',
      gateway: '10.1.0.1',
      dynamicRange: { start: '10.1.0.200', end: '10.1.0.250' },
    });
    assert.equal(net.status, 201, JSON.stringify(net.body));
    const overlap = await call('POST', '/api/v1/networks', { name: 'n2', site: 'dc1', cidr: '10.1.0.128/25' });
    assert.deepEqual([overlap.status, overlap.body.error.code], [409, ErrorCode.CidrOverlap]);
    assert.equal(
      (await call('POST', '/api/v1/profiles', { name: 'rhel9', os: 'rhel9', installTreeUrl: 'http://m/rhel9' })).status,
      201,
    );
    const host = { hostname: 'hv1', macs: ['52:54:00:00:00:01'], ip: '10.1.0.10', network: 'n1', profile: 'rhel9' };
    assert.equal((await call('POST', '/api/v1/hosts', host)).status, 201);
    const dup = await call('POST', '/api/v1/hosts', { ...host, hostname: 'hv2', ip: '10.1.0.11' });
    assert.deepEqual([dup.status, dup.body.error.code], [409, ErrorCode.DuplicateMac]);
    const inRange = await call('POST', '/api/v1/hosts', {
      ...host,
      hostname: 'hv2',
      macs: ['52:54:00:00:00:02'],
      ip: '10.1.0.210',
    });
    assert.deepEqual([inRange.status, inRange.body.error.code], [422, ErrorCode.IpInDynamicRange]);
    assert.equal((await call('GET', '/api/v1/hosts?site=dc1&state=ready')).body.length, 1);
    assert.equal((await call('GET', '/api/v1/hosts/hv1')).body.network, 'n1');
    assert.equal((await call('DELETE', '/api/v1/hosts/hv1')).status, 204);
    assert.deepEqual((await call('GET', '/api/v1/hosts/hv1')).body.error.code, ErrorCode.NotFound);
  });

  test('schema validation rejects malformed bodies with 400 and a code', async () => {
    for (const body of [{ name: 'x', buildCap: -1 }, { name: 'x', extra: 1 }, {}, { name: 5 }]) {
      const { status, body: reply } = await call('POST', '/api/v1/sites', body);
      assert.deepEqual([status, reply.error.code], [400, ErrorCode.BadRequest], JSON.stringify(body));
    }
    const broken = await app.inject({
      method: 'POST',
      url: '/api/v1/sites',
      payload: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(broken.statusCode, 400);
    assert.equal((await call('GET', '/api/v1/nothing')).body.error.code, ErrorCode.NotFound);
    assert.equal((await call('GET', '/api/v1/hosts?state=flying')).status, 400);
  });

  test('imports over HTTP: YAML then CSV, dry run, and a rejected CSV with its report', async () => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: 30 });
    assert.equal((await call('POST', '/api/v1/import/site', yaml, 'application/yaml')).body.networks.created, 1);
    const dry = await call('POST', '/api/v1/import/hosts?dryRun=true', csv, 'text/csv');
    assert.deepEqual([dry.status, dry.body.created, dry.body.dryRun], [200, 30, true]);
    assert.equal((await call('GET', '/api/v1/hosts')).body.length, 0);
    assert.equal((await call('POST', '/api/v1/import/hosts', csv, 'text/csv')).body.created, 30);
    const bad = await call('POST', '/api/v1/import/hosts', csv, 'text/csv');
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.code, ErrorCode.ImportRejected);
    assert.equal(bad.body.error.details.rows.length, 30);
    assert.equal(bad.body.error.details.rows[0].line, 2);
  });

  test('build progress per site, and adopting a discovered machine over HTTP', async () => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: 30 });
    await call('POST', '/api/v1/import/site', yaml, 'application/yaml');
    await call('POST', '/api/v1/import/hosts', csv, 'text/csv');
    const before = (await call('GET', '/api/v1/build-progress')).body as {
      site: string;
      hosts: number;
      counts: Record<string, number>;
    }[];
    const site1 = before.find((p) => p.site === 'site1')!;
    assert.deepEqual([site1.hosts, site1.counts.ready, site1.counts.building, site1.counts.built], [30, 30, 0, 0]);
    await registerDiscovered(ctx.store.db, '52:54:00:ff:00:01', '10.1.3.50', 'test');
    const name = 'discovered-525400ff0001';
    assert.equal(
      (await call('POST', `/api/v1/hosts/${name}/adopt`, { hostname: 'new.site1.example.com' })).status,
      400,
      'a profile is required',
    );
    const taken = await call('POST', `/api/v1/hosts/${name}/adopt`, {
      hostname: 'new.site1.example.com',
      profile: 'rhel9-kvm',
      ip: '10.1.0.20',
    });
    assert.deepEqual([taken.status, taken.body.error.code], [409, ErrorCode.DuplicateIp]);
    const adopted = await call('POST', `/api/v1/hosts/${name}/adopt`, {
      hostname: 'new.site1.example.com',
      profile: 'rhel9-kvm',
      ip: '10.1.0.200',
    });
    assert.equal(adopted.status, 200, JSON.stringify(adopted.body));
    assert.deepEqual(
      [adopted.body.hostname, adopted.body.network, adopted.body.buildState, adopted.body.macs],
      ['new.site1.example.com', 'site1-hv0', 'ready', ['52:54:00:ff:00:01']],
    );
    assert.equal(
      (await call('POST', `/api/v1/hosts/${name}/adopt`, { hostname: 'x', profile: 'rhel9-kvm' })).status,
      404,
    );
    const after = ((await call('GET', '/api/v1/build-progress')).body as typeof before).find(
      (p) => p.site === 'site1',
    )!;
    assert.equal(after.counts.ready, 31);
  });

  test('hosts: search by part of a name, address or MAC, and pages with their total', async () => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: 30 });
    await call('POST', '/api/v1/import/site', yaml, 'application/yaml');
    await call('POST', '/api/v1/import/hosts', csv, 'text/csv');
    const page = async (query: string) => {
      const r = await app.inject({ method: 'GET', url: `/api/v1/hosts?${query}` });
      return {
        status: r.statusCode,
        total: r.headers['x-total-count'],
        names:
          r.statusCode === 200
            ? (JSON.parse(r.body) as { hostname: string; ip: string; macs: string[] }[]).map((h) => h.hostname)
            : [],
      };
    };
    const first = await page('limit=10');
    assert.deepEqual([first.names.length, first.total], [10, '30']);
    const third = await page('limit=10&offset=20');
    assert.deepEqual([third.names.length, third.names[0]], [10, (await page('')).names[20]]);
    assert.equal((await page('')).total, undefined, 'no count unless a page is asked for');
    const all = (await call('GET', '/api/v1/hosts')).body as { hostname: string; ip: string; macs: string[] }[];
    const target = all[7]!;
    assert.deepEqual(
      (await page(`q=${target.hostname.split('.')[0]!.toUpperCase()}`)).names,
      [target.hostname],
      'by name, any case',
    );
    assert.deepEqual((await page(`q=${target.ip}`)).names, [target.hostname], 'by address');
    assert.deepEqual(
      (await page(`q=${encodeURIComponent(target.macs[0]!.slice(-5))}`)).names,
      [target.hostname],
      'by part of a MAC',
    );
    assert.deepEqual((await page('q=%25')).names, [], 'LIKE wildcards are literal');
    assert.deepEqual((await page('q=_')).names, []);
    assert.equal((await page('limit=0')).status, 400);
    assert.equal((await page('limit=abc')).status, 400);
  });
});
