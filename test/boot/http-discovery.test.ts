/**
 * Bounded discovery through boot HTTP: 100 GET /boot/<random MAC> (raw HTTP over loopback to
 * `kvmfleet serve`) make at most the burst of discovered hosts; every request still gets a script.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-httpdisc-'));
let server: ServerProcess;

before(async () => {
  server = await startServer([
    '--roles',
    'api,http',
    '--http-listen',
    '127.0.0.1:0',
    '--data-dir',
    join(work, 'data'),
    '--log-level',
    'warn',
  ]);
});
after(async () => {
  await server?.kill();
  rmSync(work, { recursive: true, force: true });
});

test('100 scripts for random MACs: every one answered, at most 50 discovered hosts, drops counted', async () => {
  const replies = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      fetch(
        `${server.bootUrl}/boot/52-54-02-00-${(i >> 8).toString(16).padStart(2, '0')}-${(i & 0xff).toString(16).padStart(2, '0')}`,
      ).then(async (r) => [r.status, await r.text()] as const),
    ),
  );
  assert.ok(
    replies.every(([status, body]) => status === 200 && body.startsWith('#!ipxe')),
    'each got a script',
  );
  const hosts = (await (await fetch(`${server.url}/api/v1/hosts?state=discovered&limit=1000`)).json()) as unknown[];
  assert.ok(hosts.length >= 50 && hosts.length <= 52, `${hosts.length} discovered hosts`);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.ok(
    Number(/kvmfleet_discovery_dropped_total\{what="host"\} (\d+)/.exec(metrics)?.[1]) >= 48,
    metrics
      .split('\n')
      .filter((l) => l.includes('discovery'))
      .join('\n'),
  );
});
