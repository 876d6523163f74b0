/**
 * VM rows on both stores: a clone's reservation refuses a taken name (AlreadyExists, by the store's
 * constraint), asks for another address when its address was taken meanwhile and gives up after 20
 * retries; rows read back in the API's shape; states set by id or by name on a hypervisor.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StaticAddress } from '../../src/fleet/addresses.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createSite } from '../../src/fleet/sites.ts';
import {
  deleteVmRow,
  findVmRow,
  finishCloneRow,
  getVm,
  insertVm,
  listVmRows,
  reserveCloneRow,
  setVmState,
  type CloneReservation,
} from '../../src/vms/vm-rows.ts';
import { describeEachStore } from '../helpers/stores.ts';
import { labHypervisor } from '../helpers/vm-rows.ts';

describeEachStore('VM rows', (ctx) => {
  const db = () => ctx.store.db;
  let serial = 0;
  const uuid = () => `00000000-0000-4000-8000-${String(++serial).padStart(12, '0')}`;
  const setUp = async () => {
    const site = await createSite(db(), { name: 'lab' });
    await createNetwork(db(), { name: 'vmnet', site: site.name, cidr: '10.9.0.0/24' });
    const networkId = (await db().selectFrom('networks').select('id').executeTakeFirstOrThrow()).id;
    const hv = { id: await labHypervisor(db()) };
    const template = await db()
      .insertInto('templates')
      .values({
        name: 'tmpl',
        hypervisor_id: hv.id,
        disk_path: '/pool/tmpl.qcow2',
        memory_mib: 1024,
        vcpus: 2,
        domain_spec: '{}',
        operations: '[]',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const clone = (name: string): CloneReservation => ({
      name,
      hypervisorId: hv.id,
      uuid: uuid(),
      mac: `52:54:00:00:00:${String(serial).padStart(2, '0')}`,
      template: { id: template.id, memoryMiB: 1024, vcpus: 2 },
      kind: 'linked',
      antiAffinity: 'web',
    });
    const address = (ip: string): StaticAddress => ({
      networkId,
      ip,
      prefix: 24,
      gateway: null,
      dns: [],
      domain: '',
    });
    return { hvId: hv.id, clone, address };
  };

  test('a reserved clone reads back provisioning, with its address; finished, it is shut off with its disks', async () => {
    const { clone, address } = await setUp();
    const reserved = await reserveCloneRow(db(), clone('c1'), async () => address('10.9.0.5'));
    assert.equal(reserved.address?.ip, '10.9.0.5');
    const vm = await getVm(db(), 'c1');
    assert.deepEqual(
      { state: vm.state, ip: vm.ip, template: vm.template, cloneKind: vm.cloneKind, disk: vm.disk, seed: vm.seedPath },
      { state: 'provisioning', ip: '10.9.0.5', template: 'tmpl', cloneKind: 'linked', disk: null, seed: null },
    );
    assert.deepEqual(
      [vm.memoryMiB, vm.vcpus, vm.antiAffinity, vm.hypervisor, vm.macs.length],
      [1024, 2, 'web', 'hv1', 1],
    );
    await finishCloneRow(db(), reserved.id, {
      diskPath: '/pool/c1.qcow2',
      seedPath: '/pool/c1-seed.img',
      spec: { name: 'c1', type: 'qemu', memoryMiB: 1024, vcpus: 2 },
    });
    const made = await getVm(db(), 'c1');
    assert.deepEqual([made.state, made.disk, made.seedPath], ['shutoff', '/pool/c1.qcow2', '/pool/c1-seed.img']);
    const spec = await db()
      .selectFrom('vms')
      .select('domain_spec')
      .where('id', '=', reserved.id)
      .executeTakeFirstOrThrow();
    assert.deepEqual(spec.domain_spec, { name: 'c1', type: 'qemu', memoryMiB: 1024, vcpus: 2 });
  });

  test('a taken name is AlreadyExists (the store constraint, not a message match); nothing is written', async () => {
    const { clone, hvId } = await setUp();
    await reserveCloneRow(db(), clone('c1'));
    await assert.rejects(reserveCloneRow(db(), clone('c1')), {
      code: 'KVMF_ERR_ALREADY_EXISTS',
      message: 'a VM "c1" already exists',
    });
    await insertVm(db(), {
      name: 'made',
      hypervisorId: hvId,
      uuid: uuid(),
      memoryMiB: 512,
      vcpus: 1,
      disk: null,
      macs: ['52:54:00:aa:00:01'],
      antiAffinity: null,
      spec: { name: 'made', type: 'kvm', memoryMiB: 512, vcpus: 1 },
    });
    await assert.rejects(reserveCloneRow(db(), clone('made')), { code: 'KVMF_ERR_ALREADY_EXISTS' });
    assert.deepEqual(
      (await listVmRows(db())).map((v) => v.name),
      ['c1', 'made'],
    );
  });

  test('an address another clone took meanwhile is asked for again; after 20 retries the clash is the error', async () => {
    const { clone, address } = await setUp();
    await reserveCloneRow(db(), clone('c1'), async () => address('10.9.0.5'));
    // A test double of the allocator that has not seen c1's row yet: it offers .5 twice, then .6.
    const offers = ['10.9.0.5', '10.9.0.5', '10.9.0.6'];
    let asked = 0;
    const second = await reserveCloneRow(db(), clone('c2'), async () => address(offers[asked++]!));
    assert.deepEqual([asked, second.address?.ip, (await getVm(db(), 'c2')).ip], [3, '10.9.0.6', '10.9.0.6']);
    let tries = 0;
    await assert.rejects(
      reserveCloneRow(db(), clone('c3'), async () => (tries++, address('10.9.0.5'))),
      (error: Error & { code?: string; constraint?: string }) =>
        error.code === '23505' && error.constraint === 'vms_ip_key',
    );
    assert.equal(tries, 21);
    assert.equal(await findVmRow(db(), 'c3'), undefined);
  });

  test('states by id and by name on a hypervisor; a deleted row is gone', async () => {
    const { clone, hvId } = await setUp();
    const { id } = await reserveCloneRow(db(), clone('c1'));
    await setVmState(db(), { id }, 'running');
    assert.equal((await findVmRow(db(), 'c1'))?.state, 'running');
    await setVmState(db(), { name: 'c1', hypervisorId: hvId + 1 }, 'paused');
    assert.equal(
      (await findVmRow(db(), 'c1'))?.state,
      'running',
      'another hypervisor’s domain of that name is not this VM',
    );
    await setVmState(db(), { name: 'c1', hypervisorId: hvId }, 'shutoff');
    assert.equal((await findVmRow(db(), 'c1'))?.state, 'shutoff');
    await deleteVmRow(db(), id);
    await assert.rejects(getVm(db(), 'c1'), { code: 'KVMF_ERR_NOT_FOUND', message: 'VM "c1" does not exist' });
  });
});
