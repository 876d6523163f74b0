/** Failed logins slow down guessing: per user name and per client address, within a window (src/auth/login-throttle.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginThrottle } from '../../src/auth/login-throttle.ts';

test('five failures for a user lock that user (any address) until the oldest leaves the window; a success clears it', () => {
  let now = 1_000_000;
  const throttle = new LoginThrottle(5, 60_000, () => now);
  for (let i = 0; i < 5; i++) {
    assert.equal(throttle.check('alice', '10.0.0.1').allowed, true, `attempt ${i + 1}`);
    throttle.failed('alice', '10.0.0.1');
    now += 1000;
  }
  const locked = throttle.check('alice', '10.0.0.9');
  assert.deepEqual(
    locked,
    { allowed: false, retryAfterS: 55 },
    'the first failure (at 0 s) leaves the window at 60 s; it is now 5 s',
  );
  assert.equal(throttle.check('bob', '10.0.0.9').allowed, true, 'other users are not locked');
  now += 55_000;
  assert.equal(throttle.check('alice', '10.0.0.1').allowed, true, 'the window has moved on');
  throttle.failed('alice', '10.0.0.1');
  assert.equal(throttle.check('alice', '10.0.0.1').allowed, false, 'four recent failures and a new one');
  throttle.succeeded('alice');
  assert.equal(throttle.check('alice', '10.0.0.1').allowed, true);
});

test('one address guessing many user names is locked after four times as many failures', () => {
  let now = 0;
  const throttle = new LoginThrottle(5, 60_000, () => now);
  for (let i = 0; i < 20; i++) {
    assert.equal(throttle.check(`user${i}`, '192.0.2.7').allowed, true);
    throttle.failed(`user${i}`, '192.0.2.7');
    now += 10;
  }
  assert.equal(throttle.check('someone-else', '192.0.2.7').allowed, false);
  assert.equal(throttle.check('someone-else', '192.0.2.8').allowed, true);
});

test('memory stays bounded: old failures are dropped', () => {
  let now = 0;
  const throttle = new LoginThrottle(5, 1000, () => now);
  for (let i = 0; i < 12_000; i++) throttle.failed(`u${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  now += 2000;
  throttle.failed('last', '10.9.9.9'); // prunes: everything else is outside the window
  assert.equal(throttle.check('u1', '10.0.0.1').allowed, true);
});
