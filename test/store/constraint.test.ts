/**
 * Unique violations told apart by SQLSTATE and constraint name, on both stores: the real vms table's
 * constraints (name, uuid, ip), a check violation that is no unique one, and a message that merely
 * looks like one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uniqueViolation } from '../../src/store/constraint.ts';
import { describeEachStore } from '../helpers/stores.ts';
import { insertBareVm } from '../helpers/vm-rows.ts';

describeEachStore('unique violations by code and constraint', (ctx) => {
  const db = () => ctx.store.db;
  const insertVm = (name: string, uuid: string, ip: string | null) => insertBareVm(db(), { name, uuid, ip });
  const failure = async (work: Promise<unknown>): Promise<unknown> => {
    try {
      await work;
    } catch (error) {
      return error;
    }
    assert.fail('the insert succeeded');
  };
  const U1 = '00000000-0000-4000-8000-000000000001';
  const U2 = '00000000-0000-4000-8000-000000000002';
  const U3 = '00000000-0000-4000-8000-000000000003';

  test('each clash names its own constraint, and only that one', async () => {
    await insertVm('vm1', U1, '10.0.0.5');
    const name = await failure(insertVm('vm1', U2, '10.0.0.6'));
    assert.equal(uniqueViolation(name, 'vms_name_key'), true);
    assert.equal(uniqueViolation(name, 'vms_ip_key'), false);
    const ip = await failure(insertVm('vm2', U2, '10.0.0.5'));
    assert.equal(uniqueViolation(ip, 'vms_ip_key'), true);
    assert.equal(uniqueViolation(ip, 'vms_name_key'), false);
    const uuid = await failure(insertVm('vm3', U1, null));
    assert.equal(uniqueViolation(uuid, 'vms_uuid_key'), true);
    assert.equal(uniqueViolation(uuid, 'vms_name_key'), false);
    // A wrapped error is looked through (its cause).
    assert.equal(uniqueViolation(new Error('reserving', { cause: name }), 'vms_name_key'), true);
  });

  test('a check violation, a plain error with the words, and a non-error are no unique violation', async () => {
    const check = await failure(insertVm('bad name', U3, null));
    assert.equal((check as { code?: string }).code, '23514');
    assert.equal(uniqueViolation(check, 'vms_name_key'), false);
    assert.equal(
      uniqueViolation(new Error('duplicate key value violates unique constraint "vms_name_key"'), 'vms_name_key'),
      false,
    );
    assert.equal(uniqueViolation({ code: '23505', constraint: 'vms_name_key' }, 'vms_name_key'), false);
    assert.equal(uniqueViolation(undefined, 'vms_name_key'), false);
  });
});
