/**
 * A VM's static address from a kvmfleet network, on both stores: the lowest host address that is not
 * the gateway, a relay, in the dynamic range, a host's reservation, another VM's or a bound lease.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freeStaticAddress } from '../../src/fleet/addresses.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createProfile } from '../../src/fleet/profiles.ts';
import { createSite } from '../../src/fleet/sites.ts';
import { describeEachStore } from '../helpers/stores.ts';
import { insertBareVm } from '../helpers/vm-rows.ts';

describeEachStore('VM static addresses', (ctx) => {
  const db = () => ctx.store.db;
  const network = (dynamicRange: { start: string; end: string } | null = { start: '10.9.0.10', end: '10.9.0.19' }) =>
    createNetwork(db(), {
      name: 'vmnet',
      site: 'lab',
      cidr: '10.9.0.0/27',
      gateway: '10.9.0.1',
      dns: ['10.9.0.2'],
      domain: 'lab.example.com',
      relays: ['10.9.0.3'],
      dynamicRange,
    });
  const vmWith = (name: string, ip: string, networkId: number, n: number) =>
    insertBareVm(db(), { name, uuid: `00000000-0000-4000-8000-00000000000${n}`, ip, networkId });

  test('the lowest address nobody claims, with what the guest needs to use it', async () => {
    await createSite(db(), { name: 'lab' });
    await network();
    const first = await freeStaticAddress(db(), 'vmnet');
    // .1 gateway, .2 is only a DNS server (not claimed), .3 a relay.
    assert.deepEqual(
      { ...first, networkId: typeof first.networkId },
      {
        networkId: 'number',
        ip: '10.9.0.2',
        prefix: 27,
        gateway: '10.9.0.1',
        dns: ['10.9.0.2'],
        domain: 'lab.example.com',
      },
    );
    await createProfile(db(), { name: 'p1', os: 'rhel9', installTreeUrl: 'http://mirror.example.com/rhel9/' });
    await createHost(db(), {
      hostname: 'h1.lab.example.com',
      macs: ['52:54:00:00:00:01'],
      ip: '10.9.0.2',
      network: 'vmnet',
      profile: 'p1',
    });
    await vmWith('vm1', '10.9.0.4', first.networkId, 1);
    await db()
      .insertInto('leases')
      .values({
        ip: '10.9.0.5',
        network_id: first.networkId,
        mac: '52:54:00:00:00:02',
        client_id: null,
        hostname: null,
        state: 'bound',
        expires_at: new Date(Date.now() + 3_600_000),
      })
      .execute();
    await db()
      .insertInto('leases')
      .values({
        ip: '10.9.0.6',
        network_id: first.networkId,
        mac: '52:54:00:00:00:03',
        client_id: null,
        hostname: null,
        state: 'released',
        expires_at: new Date(),
      })
      .execute();
    // A released lease does not hold its address.
    assert.equal((await freeStaticAddress(db(), 'vmnet')).ip, '10.9.0.6');
    for (let i = 6; i <= 9; i++) await vmWith(`vm${i}`, `10.9.0.${i}`, first.networkId, i);
    // .10–.19 is the dynamic range.
    assert.equal((await freeStaticAddress(db(), 'vmnet')).ip, '10.9.0.20');
  });

  test('a full network and an unknown one are refused', async () => {
    await createSite(db(), { name: 'lab' });
    await network({ start: '10.9.0.4', end: '10.9.0.30' });
    const { networkId } = await freeStaticAddress(db(), 'vmnet');
    assert.equal((await freeStaticAddress(db(), 'vmnet')).ip, '10.9.0.2');
    await vmWith('vm1', '10.9.0.2', networkId, 1);
    await assert.rejects(freeStaticAddress(db(), 'vmnet'), /network "vmnet" has no free static address left/);
    await assert.rejects(freeStaticAddress(db(), 'nonet'), /network "nonet" does not exist/);
  });
});
