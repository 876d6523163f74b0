/** Storage pools and volumes, and networks, through the RPC client, cross-checked with virsh. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { LibvirtError } from '../../../src/protocols/libvirt/connection.ts';
import { useLibvirtClient, virshTest } from '../../helpers/libvirtd.ts';

const virsh = virshTest;

const libvirt = useLibvirtClient('test:///default');

test('pools: list, look up, refresh, info', async () => {
  const client = libvirt();
  const pools = await client.listAllStoragePools();
  assert.ok(pools.some((p) => p.name === 'default-pool'));
  const pool = await client.lookupStoragePool('default-pool');
  await client.refreshStoragePool(pool);
  const info = await client.getStoragePoolInfo(pool);
  assert.ok(info.capacity > 0n && info.available <= info.capacity);
});

test('volumes: create, clone (create-from), path, info, delete — as virsh vol-list shows', async () => {
  const client = libvirt();
  const pool = await client.lookupStoragePool('default-pool');
  const name = `kvt-${randomUUID().slice(0, 8)}`;
  const volume = await client.createVolume(
    pool,
    `<volume><name>${name}.img</name><capacity unit='MiB'>64</capacity></volume>`,
  );
  assert.equal(volume.name, `${name}.img`);
  assert.equal((await client.getVolumeInfo(volume)).capacity, 64n * 1024n * 1024n);
  const clone = await client.cloneVolume(
    pool,
    `<volume><name>${name}-clone.img</name><capacity unit='MiB'>64</capacity></volume>`,
    volume,
  );
  assert.match(await client.getVolumePath(clone), new RegExp(`${name}-clone\\.img$`));
  const listed = await virsh('vol-list', 'default-pool');
  assert.match(listed, new RegExp(`${name}-clone\\.img`), 'virsh vol-list shows the clone');
  assert.deepEqual(
    (await client.listVolumes(pool))
      .map((v) => v.name)
      .filter((n) => n.startsWith(name))
      .sort(),
    [`${name}-clone.img`, `${name}.img`],
  );
  assert.equal((await client.lookupVolume(pool, `${name}.img`)).key, volume.key);
  await client.deleteVolume(clone);
  await client.deleteVolume(volume);
  await assert.rejects(client.lookupVolume(pool, `${name}.img`), LibvirtError);
});

test('networks: list and look up', async () => {
  const client = libvirt();
  const networks = await client.listAllNetworks();
  assert.ok(networks.some((n) => n.name === 'default'));
  assert.equal((await client.lookupNetwork('default')).name, 'default');
});
