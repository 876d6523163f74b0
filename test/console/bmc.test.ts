/** The console's BMC form (console/src/bmc.ts): what it shows of a stored BMC and the body it sends. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bmcBody, fieldsFrom, fieldsProblem } from '../../console/src/bmc.ts';

test('a stored BMC fills the form, never with a password', () => {
  const fields = fieldsFrom({
    type: 'redfish',
    address: '10.1.9.20:8443',
    username: 'admin',
    credentials: null,
    passwordSet: true,
    insecure: true,
  });
  assert.deepEqual(fields, {
    type: 'redfish',
    address: '10.1.9.20:8443',
    username: 'admin',
    password: '',
    credentials: '',
    insecure: true,
  });
  assert.equal(fieldsFrom(null).type, 'ipmi');
});

test('the body: an empty password keeps the stored one; a set or a password, not both; insecure only for Redfish', () => {
  const base = { ...fieldsFrom(null), address: ' 10.1.9.21 ', username: 'root' };
  assert.deepEqual(bmcBody(base), { type: 'ipmi', address: '10.1.9.21', username: 'root', credentials: null });
  assert.deepEqual(bmcBody({ ...base, password: 's3cret-pass' }), {
    type: 'ipmi',
    address: '10.1.9.21',
    username: 'root',
    password: 's3cret-pass',
    credentials: null,
  });
  assert.equal(bmcBody({ ...base, credentials: 'dc1-default' }).credentials, 'dc1-default');
  assert.equal(bmcBody({ ...base, type: 'redfish', insecure: false }).insecure, false);
  assert.equal('insecure' in bmcBody({ ...base, insecure: true }), false);
  assert.equal(fieldsProblem({ ...base, address: '  ' }), 'an address is needed');
  assert.match(fieldsProblem({ ...base, password: 'x', credentials: 'set' }) ?? '', /not both/);
  assert.equal(fieldsProblem(base), undefined);
});
