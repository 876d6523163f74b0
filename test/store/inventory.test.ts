import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, KvmfleetError } from '../../src/errors.ts';
import { createHost, deleteHost, findHostByMac, getHost, listHosts } from '../../src/fleet/hosts.ts';
import { createNetwork, deleteNetwork, getNetwork, updateNetwork } from '../../src/fleet/networks.ts';
import { createProfile, deleteProfile } from '../../src/fleet/profiles.ts';
import { createSite, deleteSite, getSite, updateSite } from '../../src/fleet/sites.ts';
import { describeEachStore } from '../helpers/stores.ts';

async function rejects(promise: Promise<unknown>, code: string): Promise<KvmfleetError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KvmfleetError, `expected a KvmfleetError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describeEachStore('inventory', (ctx) => {
  const seed = async () => {
    const db = ctx.store.db;
    await createSite(db, { name: 'dc1', buildCap: 5 });
    await createNetwork(db, {
      name: 'dc1-hv',
      site: 'dc1',
      cidr: '10.1.0.0/22',
      gateway: '10.1.0.1',
      dns: ['10.1.0.10'],
      domain: 'dc1.example.com',
      dynamicRange: { start: '10.1.3.0', end: '10.1.3.250' },
      relays: ['10.1.0.2'],
    });
    await createProfile(db, { name: 'rhel9', os: 'rhel9', installTreeUrl: 'http://mirror.example.com/rhel9/' });
  };

  test('sites: create, read, change the cap, refuse duplicates, delete', async () => {
    const db = ctx.store.db;
    assert.deepEqual(await createSite(db, { name: 'dc1' }), { name: 'dc1', description: '', buildCap: 20 });
    await rejects(createSite(db, { name: 'dc1' }), ErrorCode.AlreadyExists);
    await rejects(createSite(db, { name: 'Bad Name' }), ErrorCode.Validation);
    assert.equal((await updateSite(db, 'dc1', { buildCap: 3 })).buildCap, 3);
    assert.equal((await getSite(db, 'dc1')).buildCap, 3);
    await deleteSite(db, 'dc1');
    await rejects(getSite(db, 'dc1'), ErrorCode.NotFound);
  });

  test('networks: round-trip all fields; overlap refused by the service', async () => {
    await seed();
    const network = await getNetwork(ctx.store.db, 'dc1-hv');
    assert.deepEqual(network, {
      name: 'dc1-hv',
      site: 'dc1',
      cidr: '10.1.0.0/22',
      gateway: '10.1.0.1',
      dns: ['10.1.0.10'],
      domain: 'dc1.example.com',
      dynamicRange: { start: '10.1.3.0', end: '10.1.3.250' },
      relays: ['10.1.0.2'],
      vlan: null,
      leaseSeconds: 86400,
    });
    const error = await rejects(
      createNetwork(ctx.store.db, { name: 'other', site: 'dc1', cidr: '10.1.2.0/24' }),
      ErrorCode.CidrOverlap,
    );
    assert.match(error.message, /dc1-hv/);
    await rejects(
      createNetwork(ctx.store.db, { name: 'other', site: 'nope', cidr: '10.9.0.0/24' }),
      ErrorCode.UnknownSite,
    );
  });

  test('the store itself refuses overlapping networks (exclusion constraint)', async () => {
    await seed();
    const { sql } = await import('kysely');
    await assert.rejects(
      sql`insert into networks (name, site_id, cidr) values ('raw', 1, '10.1.1.0/24')`.execute(ctx.store.db),
    );
  });

  test('hosts: create, find by MAC, list by site/state, delete', async () => {
    await seed();
    const db = ctx.store.db;
    const host = await createHost(db, {
      hostname: 'hv1.dc1.example.com',
      macs: ['52:54:00:AA:00:01', '52:54:00:aa:00:02'],
      ip: '10.1.0.11',
      network: 'dc1-hv',
      profile: 'rhel9',
    });
    assert.equal(host.site, 'dc1');
    assert.equal(host.buildState, 'ready');
    assert.deepEqual(host.macs, ['52:54:00:aa:00:01', '52:54:00:aa:00:02']);
    assert.equal((await findHostByMac(db, '52-54-00-aa-00-02'))?.hostname, 'hv1.dc1.example.com');
    assert.equal(await findHostByMac(db, '52:54:00:aa:00:03'), undefined);
    assert.equal((await listHosts(db, { site: 'dc1', state: 'ready' })).length, 1);
    assert.equal((await listHosts(db, { site: 'dc2' })).length, 0);
    await rejects(deleteNetwork(db, 'dc1-hv'), ErrorCode.InUse);
    await rejects(deleteProfile(db, 'rhel9'), ErrorCode.InUse);
    await rejects(deleteSite(db, 'dc1'), ErrorCode.InUse);
    await deleteHost(db, 'HV1.dc1.example.com');
    await rejects(getHost(db, 'hv1.dc1.example.com'), ErrorCode.NotFound);
    assert.equal(await findHostByMac(db, '52:54:00:aa:00:01'), undefined, 'MACs go with their host');
  });

  test('every invalid host case is a clear coded error', async () => {
    await seed();
    const db = ctx.store.db;
    await createHost(db, {
      hostname: 'hv1',
      macs: ['52:54:00:00:00:01'],
      ip: '10.1.0.11',
      network: 'dc1-hv',
      profile: 'rhel9',
    });
    const base = { hostname: 'hv2', macs: ['52:54:00:00:00:02'], ip: '10.1.0.12', network: 'dc1-hv', profile: 'rhel9' };
    await rejects(createHost(db, { ...base, macs: ['52:54:00:00:00:01'] }), ErrorCode.DuplicateMac);
    await rejects(createHost(db, { ...base, ip: '10.1.0.11' }), ErrorCode.DuplicateIp);
    await rejects(createHost(db, { ...base, hostname: 'hv1' }), ErrorCode.DuplicateHostname);
    await rejects(createHost(db, { ...base, ip: '10.2.0.5' }), ErrorCode.IpOutsideNetwork);
    await rejects(createHost(db, { ...base, ip: '10.1.3.100' }), ErrorCode.IpInDynamicRange);
    await rejects(createHost(db, { ...base, network: 'x' }), ErrorCode.UnknownNetwork);
    await rejects(createHost(db, { ...base, profile: 'x' }), ErrorCode.UnknownProfile);
    assert.equal((await listHosts(db)).length, 1);
  });

  test('a network change may not strand reserved addresses', async () => {
    await seed();
    const db = ctx.store.db;
    await createHost(db, {
      hostname: 'hv1',
      macs: ['52:54:00:00:00:01'],
      ip: '10.1.0.11',
      network: 'dc1-hv',
      profile: 'rhel9',
    });
    await rejects(
      updateNetwork(db, 'dc1-hv', { dynamicRange: { start: '10.1.0.10', end: '10.1.0.20' } }),
      ErrorCode.IpInDynamicRange,
    );
    await rejects(updateNetwork(db, 'dc1-hv', { cidr: '10.1.2.0/23' }), ErrorCode.IpOutsideNetwork);
    assert.equal((await updateNetwork(db, 'dc1-hv', { dynamicRange: null })).dynamicRange, null);
  });

  test('profiles refuse clear-text root passwords and bad URLs', async () => {
    await rejects(
      createProfile(ctx.store.db, { name: 'p', os: 'rhel9', installTreeUrl: 'http://m/x', rootPasswordHash: 'secret' }),
      ErrorCode.BadPasswordHash,
    );
    await rejects(
      createProfile(ctx.store.db, { name: 'p', os: 'rhel9', installTreeUrl: 'ftp://m/x' }),
      ErrorCode.Validation,
    );
    await rejects(
      createProfile(ctx.store.db, { name: 'p', os: 'win', installTreeUrl: 'http://m/x' }),
      ErrorCode.Validation,
    );
    const profile = await createProfile(ctx.store.db, {
      name: 'p',
      os: 'rhel8',
      installTreeUrl: 'http://m/x/',
      rootPasswordHash: '$6$salt$hash',
    });
    assert.equal(profile.installTreeUrl, 'http://m/x');
    assert.equal(profile.hasRootPassword, true);
    assert.equal(profile.kickstartTemplate, 'rhel-kvm');
  });
});
