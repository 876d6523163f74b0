import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostsCsv } from '../../src/import/hosts-csv.ts';

const HEADER = 'hostname,mac,network,profile,bmc_type,bmc_address,bmc_credentials,bmc_insecure,bmc_ca_file';

test('hosts CSV carries a Redfish BMC’s TLS settings: bmc_ca_file and bmc_insecure', () => {
  const rows = parseHostsCsv(
    `${HEADER}\n` +
      'hv1,52:54:00:00:00:01,n1,p1,redfish,10.0.9.1,ops,,/etc/kvmfleet/bmc-ca.pem\n' +
      'hv2,52:54:00:00:00:02,n1,p1,redfish,10.0.9.2,ops,yes,\n' +
      'hv3,52:54:00:00:00:03,n1,p1,ipmi,10.0.9.3,ops,,\n',
  );
  assert.deepEqual(
    rows.map((r) => r.host.bmc),
    [
      { type: 'redfish', address: '10.0.9.1', credentials: 'ops', caFile: '/etc/kvmfleet/bmc-ca.pem' },
      { type: 'redfish', address: '10.0.9.2', credentials: 'ops', insecure: true },
      { type: 'ipmi', address: '10.0.9.3', credentials: 'ops' },
    ],
  );
});

test('hosts CSV: a bmc_insecure that is not a boolean, or TLS settings without a BMC, refuse their line', () => {
  assert.throws(
    () => parseHostsCsv(`${HEADER}\nhv1,52:54:00:00:00:01,n1,p1,redfish,10.0.9.1,ops,maybe,\n`),
    /line 2: bmc_insecure is "maybe", not true\/false/,
  );
  assert.throws(
    () => parseHostsCsv(`${HEADER}\nhv1,52:54:00:00:00:01,n1,p1,,,,true,\n`),
    /line 2: bmc_insecure and bmc_ca_file need a bmc_address/,
  );
});
