import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveRange } from '../../src/protocols/http-range.ts';

test('RFC 9110 §14: suffix ranges, clipping, invalid and malformed ranges ignored, unsatisfiable ones', () => {
  const cases: [string | undefined, number, ReturnType<typeof resolveRange>][] = [
    [undefined, 1000, { kind: 'ignore' }],
    ['bytes=-5000', 1000, { kind: 'range', start: 0, end: 999 }], // a suffix longer than the file: all of it
    ['bytes=-100', 1000, { kind: 'range', start: 900, end: 999 }],
    ['bytes=100-199', 1000, { kind: 'range', start: 100, end: 199 }],
    ['bytes=900-5000', 1000, { kind: 'range', start: 900, end: 999 }],
    ['bytes=0-', 1000, { kind: 'range', start: 0, end: 999 }],
    ['Bytes = 5-5', 1000, { kind: 'range', start: 5, end: 5 }],
    ['bytes=1000-', 1000, { kind: 'unsatisfiable' }],
    ['bytes=5000-6000', 1000, { kind: 'unsatisfiable' }],
    ['bytes=-0', 1000, { kind: 'unsatisfiable' }],
    ['bytes=-10', 0, { kind: 'unsatisfiable' }],
    ['bytes=0-0-0', 1000, { kind: 'ignore' }],
    ['bytes=5-1', 1000, { kind: 'ignore' }], // last < first: invalid
    ['bytes=abc', 1000, { kind: 'ignore' }],
    ['bytes=', 1000, { kind: 'ignore' }],
    ['items=0-5', 1000, { kind: 'ignore' }],
    ['bytes=0-1,5-6', 1000, { kind: 'ignore' }], // several ranges: no multipart, the whole file
    ['bytes=99999999999999999999-', 1000, { kind: 'ignore' }],
  ];
  for (const [header, size, expected] of cases)
    assert.deepEqual(resolveRange(header, size), expected, `${header} of ${size}`);
});
