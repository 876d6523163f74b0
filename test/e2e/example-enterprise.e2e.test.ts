/**
 * The 3-site example (deploy/example-enterprise/run.ts) with one command: 1 500 hypervisors on one
 * PostgreSQL, clustered (DHCP failover pair, HAProxy, two boot servers) and distributed (a boot node
 * per network) networks in every site, and a storm in which every one of them is built.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(new URL('../../deploy/example-enterprise/run.ts', import.meta.url));

test(
  'example.com: 3 sites × 500 hosts start with one command and all build in a storm',
  { timeout: 900_000 },
  async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', EXAMPLE, '--hosts-per-site', '500', '--storm'],
      { timeout: 880_000, maxBuffer: 16 * 1024 * 1024 },
    );
    console.log(
      stdout
        .trim()
        .split('\n')
        .map((l) => `# ${l}`)
        .join('\n'),
    );
    assert.match(stderr, /inventory: 3 sites, 1500 hosts/);
    assert.match(
      stderr,
      /(1[5-9]|[2-9]\d) kvmfleet nodes alive/,
      'control + per site 2 boot servers, a DHCP pair and a distributed node',
    );
    assert.match(stdout, /^built: 1500 hosts in [\d.]+ s$/m);
    assert.doesNotMatch(stdout, /[1-9]\d* failed/);
  },
);
