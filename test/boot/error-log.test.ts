import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeError, rateLimitedErrorLog } from '../../src/boot/error-log.ts';

test('UDP role errors are logged with their cause chain, at most N lines a second', () => {
  const store = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' });
  assert.equal(
    describeError(new Error('lease 10.0.0.5 for 52:54:00:00:00:01 not stored', { cause: store })),
    'lease 10.0.0.5 for 52:54:00:00:00:01 not stored: caused by: invalid byte sequence for encoding "UTF8": 0x00 (22021)',
  );
  const lines: string[] = [];
  const log = rateLimitedErrorLog('dhcp', 3, (line) => lines.push(line));
  for (let i = 0; i < 10; i++) log(new Error(`e${i}`));
  assert.ok(lines.length <= 6 && lines.length >= 3, `${lines.length} lines`);
  assert.match(lines[0]!, /^dhcp error: e0$/);
});
