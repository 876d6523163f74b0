import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../src/errors.ts';
import type { HostInput } from '../../src/fleet/model.ts';
import { validateHostBatch, type HostContext } from '../../src/fleet/validate-host.ts';
import { validateNetwork } from '../../src/fleet/validate-network.ts';

const context = (over: Partial<HostContext> = {}): HostContext => ({
  networks: new Map([
    ['hv', { name: 'hv', cidr: '10.1.0.0/22', dynamicRange: { start: '10.1.3.0', end: '10.1.3.250' } }],
  ]),
  profiles: new Set(['rhel9']),
  existing: {
    hostnames: new Set(['old']),
    ipOwners: new Map([['10.1.0.50', 'old']]),
    macOwners: new Map([['52:54:00:00:00:99', 'old']]),
    uuidOwners: new Map(),
  },
  mode: 'create',
  ...over,
});
const row = (over: Partial<HostInput> = {}): HostInput => ({
  hostname: 'hv1',
  macs: ['52:54:00:00:00:01'],
  ip: '10.1.0.11',
  network: 'hv',
  profile: 'rhel9',
  ...over,
});
const codesOf = (rows: HostInput[], ctx = context()) =>
  validateHostBatch(rows, ctx).errors.map((e) => [e.row, e.problems.map((p) => p.code)]);

test('a good row passes and is normalized', () => {
  const { hosts, errors } = validateHostBatch(
    [row({ hostname: 'HV1.Example.com.', macs: ['52-54-00-00-00-01'] })],
    context(),
  );
  assert.deepEqual(errors, []);
  assert.equal(hosts[0]!.hostname, 'hv1.example.com');
  assert.deepEqual(hosts[0]!.macs, ['52:54:00:00:00:01']);
});

const cases: [string, Partial<HostInput>, string][] = [
  ['IP outside its network', { ip: '10.2.0.5' }, ErrorCode.IpOutsideNetwork],
  ['network address', { ip: '10.1.0.0' }, ErrorCode.IpOutsideNetwork],
  ['IP inside the dynamic range', { ip: '10.1.3.7' }, ErrorCode.IpInDynamicRange],
  ['MAC of an existing host', { macs: ['52:54:00:00:00:99'] }, ErrorCode.DuplicateMac],
  ['IP of an existing host', { ip: '10.1.0.50' }, ErrorCode.DuplicateIp],
  ['existing hostname', { hostname: 'old' }, ErrorCode.DuplicateHostname],
  ['unknown network', { network: 'nope' }, ErrorCode.UnknownNetwork],
  ['unknown profile', { profile: 'nope' }, ErrorCode.UnknownProfile],
  ['bad MAC', { macs: ['zz:54:00:00:00:01'] }, ErrorCode.Validation],
  ['no MAC', { macs: [] }, ErrorCode.Validation],
  ['bad IP', { ip: '10.1.0.300' }, ErrorCode.Validation],
  ['bad hostname', { hostname: 'bad_name!' }, ErrorCode.Validation],
];
for (const [title, over, code] of cases) {
  test(`rejects: ${title} → ${code}`, () => assert.deepEqual(codesOf([row(over)]), [[1, [code]]]));
}

test('duplicates inside one batch name the earlier row', () => {
  const result = validateHostBatch(
    [
      row(),
      row({ hostname: 'hv2', ip: '10.1.0.12' }),
      row({ hostname: 'hv3', macs: ['52:54:00:00:00:03'] }),
      row({ hostname: 'hv1', macs: ['52:54:00:00:00:04'], ip: '10.1.0.14' }),
    ],
    context(),
  );
  assert.deepEqual(
    result.errors.map((e) => [e.row, e.problems.map((p) => p.code)]),
    [
      [2, [ErrorCode.DuplicateMac]],
      [3, [ErrorCode.DuplicateIp]],
      [4, [ErrorCode.DuplicateHostname]],
    ],
  );
  assert.match(result.errors[0]!.problems[0]!.message, /row 1/);
});

test("upsert lets a host keep its own identifiers but not take another host's", () => {
  const ctx = context({ mode: 'upsert' });
  assert.deepEqual(codesOf([row({ hostname: 'old', macs: ['52:54:00:00:00:99'], ip: '10.1.0.50' })], ctx), []);
  assert.deepEqual(codesOf([row({ hostname: 'other', macs: ['52:54:00:00:00:99'] })], ctx), [
    [1, [ErrorCode.DuplicateMac]],
  ]);
});

test('a row with several problems reports all of them', () => {
  assert.deepEqual(codesOf([row({ ip: '10.1.0.50', macs: ['52:54:00:00:00:99'], profile: 'x' })]), [
    [1, [ErrorCode.DuplicateMac, ErrorCode.UnknownProfile, ErrorCode.DuplicateIp]],
  ]);
});

test('validateNetwork: overlap, gateway outside, range order, gateway in range', () => {
  const others = [{ name: 'a', cidr: '10.1.0.0/22' }];
  const codes = (input: Parameters<typeof validateNetwork>[0]) => validateNetwork(input, others).map((p) => p.code);
  assert.deepEqual(codes({ name: 'b', site: 's', cidr: '10.1.2.0/24' }), [ErrorCode.CidrOverlap]);
  assert.deepEqual(codes({ name: 'a', site: 's', cidr: '10.1.0.0/23' }), [], 'a network does not overlap itself');
  assert.deepEqual(codes({ name: 'b', site: 's', cidr: '10.2.0.0/24', gateway: '10.3.0.1' }), [
    ErrorCode.IpOutsideNetwork,
  ]);
  assert.deepEqual(
    codes({ name: 'b', site: 's', cidr: '10.2.0.0/24', dynamicRange: { start: '10.2.0.200', end: '10.2.0.100' } }),
    [ErrorCode.Validation],
  );
  assert.deepEqual(
    codes({
      name: 'b',
      site: 's',
      cidr: '10.2.0.0/24',
      gateway: '10.2.0.150',
      dynamicRange: { start: '10.2.0.100', end: '10.2.0.200' },
    }),
    [ErrorCode.IpInDynamicRange],
  );
  assert.deepEqual(codes({ name: 'b', site: 's', cidr: '10.2.0.1/24' }), [ErrorCode.Validation]);
});

test('a BMC given with the host record obeys the BMC rules (type, address, TLS settings only for Redfish)', () => {
  const problemsOf = (bmc: HostInput['bmc']) =>
    validateHostBatch([row({ bmc })], context()).errors.flatMap((e) =>
      e.problems.map((p) => `${p.field}: ${p.message}`),
    );
  assert.deepEqual(problemsOf({ type: 'redfish', address: '10.1.0.200', caFile: '/etc/kvmfleet/bmc-ca.pem' }), []);
  assert.deepEqual(problemsOf({ type: 'ipmi', address: '10.1.0.200:623', username: 'admin' }), []);
  assert.match(problemsOf({ type: 'telnet', address: '10.1.0.200' }).join(), /^bmc: BMC type "telnet" is not/);
  assert.match(problemsOf({ type: 'ipmi', address: 'bmc host\n' }).join(), /^bmc: BMC address/);
  assert.match(problemsOf({ type: 'ipmi', address: '10.1.0.200', insecure: true }).join(), /Redfish settings/);
  assert.match(problemsOf({ type: 'redfish', address: '10.1.0.200', caFile: 'ca.pem' }).join(), /absolute path/);
});
