import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrsOverlap, formatCidr, formatIpv4, isHostAddress, parseCidr, parseIpv4 } from '../../src/fleet/ipv4.ts';
import { normalizeMac } from '../../src/fleet/mac.ts';

test('parseIpv4 accepts dotted quads and round-trips', () => {
  for (const text of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '192.168.0.1']) assert.equal(formatIpv4(parseIpv4(text)!), text);
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001);
});

test('parseIpv4 rejects everything else', () => {
  for (const text of ['', '10.0.0', '10.0.0.0.1', '256.0.0.1', '010.0.0.1', '10.0.0.-1', '10..0.1', ' 10.0.0.1', '1e1.0.0.1', '0x10.0.0.1']) {
    assert.equal(parseIpv4(text), undefined, text);
  }
});

test('parseCidr wants a network address and a prefix ≤ 32', () => {
  assert.deepEqual(parseCidr('10.1.0.0/22'), { network: 0x0a010000, prefix: 22 });
  assert.equal(formatCidr(parseCidr('0.0.0.0/0')!), '0.0.0.0/0');
  for (const text of ['10.1.0.1/22', '10.1.0.0/33', '10.1.0.0', '10.1.0.0/', '10.1.0.0/a', '10.1.0.0/022x']) assert.equal(parseCidr(text), undefined, text);
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

test('normalizeMac accepts the usual spellings and rejects the rest', () => {
  for (const text of ['52:54:00:AB:cd:ef', '52-54-00-ab-cd-ef', '5254.00ab.cdef', '525400abcdef']) assert.equal(normalizeMac(text), '52:54:00:ab:cd:ef', text);
  for (const text of ['52:54:00:ab:cd', '52:54:00:ab:cd:eg', '5:254:00:ab:cd:ef', '', '52:54:00:ab:cd:ef:00', '52:54-00:ab:cd:ef']) assert.equal(normalizeMac(text), undefined, text);
});
