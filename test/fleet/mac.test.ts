import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeMac } from '../../src/fleet/mac.ts';

test('normalizeMac accepts the usual spellings and rejects the rest', () => {
  for (const text of ['52:54:00:AB:cd:ef', '52-54-00-ab-cd-ef', '5254.00ab.cdef', '525400abcdef'])
    assert.equal(normalizeMac(text), '52:54:00:ab:cd:ef', text);
  for (const text of [
    '52:54:00:ab:cd',
    '52:54:00:ab:cd:eg',
    '5:254:00:ab:cd:ef',
    '',
    '52:54:00:ab:cd:ef:00',
    '52:54-00:ab:cd:ef',
  ])
    assert.equal(normalizeMac(text), undefined, text);
});
