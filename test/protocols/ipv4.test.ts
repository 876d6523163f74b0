import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cidrsOverlap,
  firstFreeHostAddress,
  formatCidr,
  formatIpv4,
  isHostAddress,
  parseCidr,
  parseIpv4,
} from '../../src/protocols/ipv4.ts';

test('parseIpv4 accepts dotted quads and round-trips', () => {
  for (const text of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '192.168.0.1'])
    assert.equal(formatIpv4(parseIpv4(text)!), text);
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001);
});

test('parseIpv4 rejects everything else', () => {
  for (const text of [
    '',
    '10.0.0',
    '10.0.0.0.1',
    '256.0.0.1',
    '010.0.0.1',
    '10.0.0.-1',
    '10..0.1',
    ' 10.0.0.1',
    '1e1.0.0.1',
    '0x10.0.0.1',
  ]) {
    assert.equal(parseIpv4(text), undefined, text);
  }
});

test('parseCidr wants a network address and a prefix ≤ 32', () => {
  assert.deepEqual(parseCidr('10.1.0.0/22'), { network: 0x0a010000, prefix: 22 });
  assert.equal(formatCidr(parseCidr('0.0.0.0/0')!), '0.0.0.0/0');
  for (const text of ['10.1.0.1/22', '10.1.0.0/33', '10.1.0.0', '10.1.0.0/', '10.1.0.0/a', '10.1.0.0/022x'])
    assert.equal(parseCidr(text), undefined, text);
});

test('cidrsOverlap: nested, equal, adjacent, disjoint', () => {
  const c = (t: string) => parseCidr(t)!;
  assert.equal(cidrsOverlap(c('10.1.0.0/22'), c('10.1.2.0/24')), true);
  assert.equal(cidrsOverlap(c('10.1.2.0/24'), c('10.1.0.0/22')), true);
  assert.equal(cidrsOverlap(c('10.1.0.0/24'), c('10.1.0.0/24')), true);
  assert.equal(cidrsOverlap(c('10.1.0.0/24'), c('10.1.1.0/24')), false);
  assert.equal(cidrsOverlap(c('10.1.0.0/22'), c('10.1.4.0/22')), false);
  assert.equal(cidrsOverlap(c('0.0.0.0/0'), c('192.168.1.0/24')), true);
});

test('isHostAddress excludes network and broadcast addresses', () => {
  const net = parseCidr('10.1.0.0/24')!;
  assert.equal(isHostAddress(net, parseIpv4('10.1.0.0')!), false);
  assert.equal(isHostAddress(net, parseIpv4('10.1.0.255')!), false);
  assert.equal(isHostAddress(net, parseIpv4('10.1.0.1')!), true);
  assert.equal(isHostAddress(net, parseIpv4('10.1.1.1')!), false);
});

test('firstFreeHostAddress: the lowest usable address not taken; none when the network is full', () => {
  const net = parseCidr('10.60.0.0/29')!; // .1 – .6 usable
  const taken = new Set(['10.60.0.1', '10.60.0.2', '10.60.0.4'].map((t) => parseIpv4(t)!));
  assert.equal(formatIpv4(firstFreeHostAddress(net, (ip) => taken.has(ip))!), '10.60.0.3');
  assert.equal(
    firstFreeHostAddress(net, () => true),
    undefined,
  );
  assert.equal(
    formatIpv4(firstFreeHostAddress(parseCidr('10.60.0.8/31')!, () => false)!),
    '10.60.0.8',
    '/31: both addresses are usable',
  );
  const all = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const ip = firstFreeHostAddress(net, (c) => all.has(c))!;
    all.add(ip);
  }
  assert.deepEqual(
    [...all].map(formatIpv4),
    ['10.60.0.1', '10.60.0.2', '10.60.0.3', '10.60.0.4', '10.60.0.5', '10.60.0.6'],
    'never the network or broadcast address',
  );
});
