import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkProfileInput } from '../../src/fleet/profiles.ts';
import { RE } from '../../src/fleet/validate-names.ts';

const profile = (installTreeUrl: string) => ({ name: 'p', os: 'rhel9' as const, installTreeUrl });

test('an install tree URL may carry any TCP port, 1 to 65535, and nothing beyond', () => {
  for (const port of [1, 80, 8080, 10080, 49152, 65535])
    assert.doesNotThrow(
      () => checkProfileInput(profile(`http://boot.example.com:${port}/trees/rhel9`)),
      `port ${port}`,
    );
  for (const port of ['0', '65536', '99999', '080', '123456'])
    assert.equal(RE.httpUrl.test(`http://boot.example.com:${port}/trees`), false, `port ${port}`);
  assert.throws(() => checkProfileInput(profile('http://boot.example.com:65536/trees')), /installTreeUrl/);
});
