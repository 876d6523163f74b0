/**
 * The real binary: `kvmfleet serve` answers /healthz and /openapi.json, the CLI drives it,
 * and a SIGKILL in the middle of an import leaves the store exactly as it was before the import.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';
import { BACKENDS, createPostgresDatabase, type Backend } from '../helpers/stores.ts';

const work = mkdtempSync(join(tmpdir(), 'kvmfleet-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('kvmfleet serve + CLI (embedded store)', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(['--data-dir', join(work, 'cli-data'), '--log-level', 'warn']);
  });
  after(() => server.kill());

  test('answers /healthz and /openapi.json', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok', version: '0.1.0' });
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string; paths: object };
    assert.equal(openapi.openapi, '3.0.3');
    assert.ok(Object.keys(openapi.paths).length >= 10);
  });

  test('site/network/profile/host verbs, tables and --json, errors with codes and exit 1', async () => {
    const ok = async (...args: string[]) => {
      const result = await runCli(server.url, args);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };
    await ok('site', 'add', 'dc1', '--cap', '3');
    await ok(
      'network',
      'add',
      'dc1-hv',
      '--site',
      'dc1',
      '--cidr',
      '10.1.0.0/22',
      '--gateway',
      '10.1.0.1',
      '--range',
      '10.1.3.0-10.1.3.250',
      '--relay',
      '10.1.0.2',
    );
    await ok('profile', 'add', 'rhel9', '--os', 'rhel9', '--tree', 'http://mirror/rhel9');
    await ok(
      'host',
      'add',
      'hv1',
      '--mac',
      '52:54:00:00:00:01',
      '--ip',
      '10.1.0.11',
      '--network',
      'dc1-hv',
      '--profile',
      'rhel9',
    );
    const table = await ok('host', 'list');
    assert.match(table, /^HOSTNAME\s+MAC\s+IP\s+NETWORK\s+PROFILE\s+STATE\s+POWER$/m);
    assert.match(table, /^hv1\s+52:54:00:00:00:01\s+10\.1\.0\.11\s+dc1-hv\s+rhel9\s+ready\s+-$/m); // no BMC: no power reading
    // kvmfleet_host_power counts the hosts with a BMC (none here) by their last power reading.
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^kvmfleet_host_power\{state="on"\} 0$/m);
    const hosts = JSON.parse(await ok('--json', 'host', 'list', '--site', 'dc1'));
    assert.equal(hosts[0].hostname, 'hv1');
    assert.equal(JSON.parse(await ok('--json', 'site', 'set', 'dc1', '--cap', '7')).buildCap, 7);

    const dup = await runCli(server.url, [
      'host',
      'add',
      'hv2',
      '--mac',
      '52:54:00:00:00:01',
      '--ip',
      '10.1.0.12',
      '--network',
      'dc1-hv',
      '--profile',
      'rhel9',
    ]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /KVMF_ERR_DUPLICATE_MAC/);

    const csv = join(work, 'bad.csv');
    writeFileSync(csv, 'hostname,mac,ip,network,profile\nhv3,52:54:00:00:00:03,10.1.3.3,dc1-hv,rhel9\n');
    const bad = await runCli(server.url, ['import', csv]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /KVMF_ERR_IMPORT_REJECTED/);
    assert.match(bad.stderr, /^2\s+hv3\s+KVMF_ERR_IP_IN_DYNAMIC_RANGE/m, 'the report names the line');

    const unreachable = await runCli('http://127.0.0.1:1', ['site', 'list']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach kvmfleet/);
  });

  test('a second server on the same data directory is refused', async () => {
    await assert.rejects(startServer(['--data-dir', join(work, 'cli-data')], {}, 30_000), /in use by process/);
  });
});

test('the README default (relative ./data, api and http roles) starts and answers', async () => {
  const cwd = join(work, 'readme');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(cwd);
  const server = await startServer(
    ['--roles', 'api,http', '--http-listen', '127.0.0.1:0', '--log-level', 'warn'],
    {},
    60_000,
    { cwd },
  );
  try {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/openapi.json`)).status, 200);
    assert.equal((await fetch(`${server.bootUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.bootUrl}/trees/nothing`)).status, 404);
  } finally {
    await server.kill();
  }
});

/** A stable picture of the inventory: every host with its MACs, and every network and site. */
async function snapshot(url: string): Promise<string> {
  const get = async (path: string) => (await fetch(`${url}${path}`)).json();
  return JSON.stringify({
    sites: await get('/api/v1/sites'),
    networks: await get('/api/v1/networks'),
    hosts: await get('/api/v1/hosts'),
  });
}

for (const backend of BACKENDS as Backend[]) {
  test(`SIGKILL in the middle of an import leaves the store as before [${backend}]`, { timeout: 240_000 }, async () => {
    const database = backend === 'postgresql' ? await createPostgresDatabase() : undefined;
    const args = database ? ['--database-url', database.url] : ['--data-dir', join(work, `kill-${backend}`)];
    try {
      const enterprise = generateEnterprise({ sites: 3, hostsPerSite: 12_000, macPrefix: '52:54:10' });
      const [header, ...rows] = enterprise.csv.trim().split('\n');
      let server = await startServer([...args, '--log-level', 'info']);
      const yaml = await fetch(`${server.url}/api/v1/import/site`, {
        method: 'POST',
        headers: { 'content-type': 'application/yaml' },
        body: enterprise.yaml,
      });
      assert.equal(yaml.status, 200);
      const base = await fetch(`${server.url}/api/v1/import/hosts`, {
        method: 'POST',
        headers: { 'content-type': 'text/csv' },
        body: [header, ...rows.slice(0, 100)].join('\n'),
      });
      assert.equal(base.status, 200);
      const before = await snapshot(server.url);

      const big = fetch(`${server.url}/api/v1/import/hosts`, {
        method: 'POST',
        headers: { 'content-type': 'text/csv' },
        body: [header, ...rows.slice(100)].join('\n'),
      }).then(
        (r) => r.status,
        () => 'connection lost',
      );
      // Kill only once rows are being written inside the import's transaction.
      await server.waitForLine(/hosts import progress/, 120_000);
      await server.kill('SIGKILL');
      assert.equal(await big, 'connection lost', 'the import did not finish before the kill');

      server = await startServer([...args, '--log-level', 'warn']);
      try {
        assert.equal(await snapshot(server.url), before);
        const count = ((await (await fetch(`${server.url}/api/v1/hosts`)).json()) as unknown[]).length;
        assert.equal(count, 100);
      } finally {
        await server.kill();
      }
    } finally {
      await database?.drop();
    }
  });
}
