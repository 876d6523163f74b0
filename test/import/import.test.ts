import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, KvmfleetError } from '../../src/errors.ts';
import { countHostsByState, listHosts } from '../../src/fleet/hosts.ts';
import { listNetworks } from '../../src/fleet/networks.ts';
import { listSites } from '../../src/fleet/sites.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

async function rejected(promise: Promise<unknown>): Promise<KvmfleetError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KvmfleetError, String(error));
    return error;
  }
  assert.fail('expected the import to be rejected');
}

describeEachStore('import', (ctx) => {
  test('3 sites × 500 hosts (1 500) import in under 10 s, all or nothing', async () => {
    const enterprise = generateEnterprise({ sites: 3, hostsPerSite: 500 });
    const started = performance.now();
    const site = await importSiteYaml(ctx.store.db, enterprise.yaml);
    const hosts = await importHostsCsv(ctx.store.db, enterprise.csv);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `# [${ctx.backend}] imported 3 sites, ${site.networks.created} networks, ${hosts.created} hosts in ${seconds.toFixed(2)} s`,
    );
    assert.equal(hosts.created, 1500);
    assert.equal((await countHostsByState(ctx.store.db)).ready, 1500);
    assert.equal((await countHostsByState(ctx.store.db, 'site2')).ready, 500);
    assert.ok(seconds < 10, `import took ${seconds.toFixed(2)} s`);
  });

  test('site YAML applies again as an update, and a dry run writes nothing', async () => {
    const { yaml } = generateEnterprise({ sites: 2, hostsPerSite: 10 });
    const first = await importSiteYaml(ctx.store.db, yaml);
    assert.deepEqual(first.sites, { created: 2, updated: 0 });
    const again = await importSiteYaml(ctx.store.db, yaml.replace(/buildCap: 50/g, 'buildCap: 7'));
    assert.deepEqual(again.sites, { created: 0, updated: 2 });
    assert.deepEqual(
      (await listSites(ctx.store.db)).map((s) => s.buildCap),
      [7, 7],
    );
    const dry = await importSiteYaml(ctx.store.db, 'sites:\n  - name: site9\n', { dryRun: true });
    assert.deepEqual(dry.sites, { created: 1, updated: 0 });
    assert.equal((await listSites(ctx.store.db)).length, 2);
  });

  test('a site YAML with any bad item imports nothing and names each item', async () => {
    const yaml = [
      'sites:',
      '  - name: good',
      '    networks:',
      '      - { name: n1, cidr: 10.5.0.0/24, gateway: 10.5.0.1 }',
      '      - { name: n2, cidr: 10.5.0.128/25 }',
      '  - name: Bad Site',
      'profiles:',
      '  - { name: p, os: dos, installTreeUrl: http://x }',
    ].join('\n');
    const error = await rejected(importSiteYaml(ctx.store.db, yaml));
    assert.equal(error.code, ErrorCode.ImportRejected);
    const items = (error.details as { items: { item: string; problems: { code: string }[] }[] }).items;
    assert.deepEqual(
      items.map((i) => [i.item, i.problems.map((p) => p.code)]),
      [
        ['sites[1]', [ErrorCode.Validation]],
        ['sites[0].networks[0]', [ErrorCode.CidrOverlap]],
        ['sites[0].networks[1]', [ErrorCode.CidrOverlap]],
        ['profiles[0]', [ErrorCode.Validation]],
      ],
    );
    assert.equal((await listSites(ctx.store.db)).length, 0);
    assert.equal((await listNetworks(ctx.store.db)).length, 0);
    assert.equal((await rejected(importSiteYaml(ctx.store.db, 'sites: [1, 2'))).code, ErrorCode.BadRequest);
    assert.equal((await rejected(importSiteYaml(ctx.store.db, 'hosts: []'))).code, ErrorCode.BadRequest);
  });

  test('a hosts CSV with any bad row imports nothing and reports every row by line', async () => {
    const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: 20 });
    await importSiteYaml(ctx.store.db, yaml);
    await importHostsCsv(ctx.store.db, csv.split('\n').slice(0, 3).join('\n'));
    const existing = (await listHosts(ctx.store.db))[0]!;
    const rows = [
      'hostname,mac,ip,network,profile',
      'new1,52:54:01:00:00:01,10.1.0.100,site1-hv0,rhel9-kvm', // good
      `new2,${existing.macs[0]},10.1.0.101,site1-hv0,rhel9-kvm`, // MAC of an existing host
      `new3,52:54:01:00:00:03,${existing.ip},site1-hv0,rhel9-kvm`, // IP of an existing host
      `${existing.hostname},52:54:01:00:00:04,10.1.0.104,site1-hv0,rhel9-kvm`, // existing hostname
      'new5,52:54:01:00:00:05,10.9.0.5,site1-hv0,rhel9-kvm', // outside the network
      'new6,52:54:01:00:00:06,10.1.3.6,site1-hv0,rhel9-kvm', // inside the dynamic range
      'new7,52:54:01:00:00:01,10.1.0.107,site1-hv0,rhel9-kvm', // MAC of row 1 of this file
      'new8,52:54:01:00:00:08,10.1.0.100,site1-hv0,rhel9-kvm', // IP of row 1 of this file
      'new1,52:54:01:00:00:09,10.1.0.109,site1-hv0,rhel9-kvm', // hostname of row 1 of this file
      'new10,52:54:01:00:00:0a,10.1.0.110,nowhere,rhel9-kvm', // unknown network
      'new11,52:54:01:00:00:0b,10.1.0.111,site1-hv0,nothing', // unknown profile
      'new12,not-a-mac,10.1.0.112,site1-hv0,rhel9-kvm', // bad MAC
    ].join('\n');
    const error = await rejected(importHostsCsv(ctx.store.db, rows));
    assert.equal(error.code, ErrorCode.ImportRejected);
    const report = (error.details as { rows: { line: number; problems: { code: string }[] }[] }).rows;
    assert.deepEqual(
      report.map((r) => [r.line, r.problems.map((p) => p.code)]),
      [
        [3, [ErrorCode.DuplicateMac]],
        [4, [ErrorCode.DuplicateIp]],
        [5, [ErrorCode.DuplicateHostname]],
        [6, [ErrorCode.IpOutsideNetwork]],
        [7, [ErrorCode.IpInDynamicRange]],
        [8, [ErrorCode.DuplicateMac]],
        [9, [ErrorCode.DuplicateIp]],
        [10, [ErrorCode.DuplicateHostname]],
        [11, [ErrorCode.UnknownNetwork]],
        [12, [ErrorCode.UnknownProfile]],
        [13, [ErrorCode.Validation]],
      ],
    );
    assert.equal((await listHosts(ctx.store.db)).length, 2, 'the good row was not imported either');
  });

  test('hosts CSV: header and syntax errors are clear; upsert updates; extra columns work', async () => {
    const { yaml } = generateEnterprise({ sites: 1, hostsPerSite: 1 });
    await importSiteYaml(ctx.store.db, yaml);
    assert.match(
      (await rejected(importHostsCsv(ctx.store.db, 'hostname,ip\nx,1.2.3.4'))).message,
      /lacks column\(s\): mac, network, profile/,
    );
    assert.match(
      (await rejected(importHostsCsv(ctx.store.db, 'hostname,mac,network,profile,colour\n'))).message,
      /unknown column/,
    );
    assert.equal(
      (await rejected(importHostsCsv(ctx.store.db, 'hostname,mac,network,profile\n"a,b'))).code,
      ErrorCode.BadRequest,
    );
    const csv =
      'hostname,mac,ip,network,profile,uuid,bmc_address\nh1,52:54:02:00:00:01;52:54:02:00:00:02,10.1.0.50,site1-hv0,rhel9-kvm,0f8fad5b-d9cb-469f-a165-70867728950e,10.200.0.1\n';
    assert.equal((await importHostsCsv(ctx.store.db, csv)).created, 1);
    const [host] = await listHosts(ctx.store.db);
    assert.deepEqual(host!.macs, ['52:54:02:00:00:01', '52:54:02:00:00:02']);
    assert.deepEqual(host!.bmc, { type: 'ipmi', address: '10.200.0.1' });
    assert.equal((await rejected(importHostsCsv(ctx.store.db, csv))).code, ErrorCode.ImportRejected);
    const moved = await importHostsCsv(
      ctx.store.db,
      csv.replace('10.1.0.50', '10.1.0.51').replace(';52:54:02:00:00:02', ''),
      { mode: 'upsert' },
    );
    assert.deepEqual([moved.created, moved.updated], [0, 1]);
    const [after] = await listHosts(ctx.store.db);
    assert.equal(after!.ip, '10.1.0.51');
    assert.deepEqual(after!.macs, ['52:54:02:00:00:01']);
  });
});
