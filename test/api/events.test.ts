/**
 * The live event stream: `kvmfleet events` (server-sent events) shows a host's boot steps as the
 * boot HTTP role records them, and activity summaries; unknown types are refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { httpFrom } from '../helpers/raw-http.ts';
import { KVMFLEET_BIN, runCli, startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-events-'));
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
  const site =
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 127.80.0.0/24, gateway: 127.80.0.1 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab/trees/rhel9" }\n';
  assert.equal((await runCli(server.url, ['import', '--kind', 'site', '-'], site)).code, 0);
  assert.equal(
    (
      await runCli(server.url, [
        'host',
        'add',
        'hv1.lab',
        '--mac',
        '52:54:00:ee:00:01',
        '--ip',
        '127.80.0.10',
        '--network',
        'lab-hv',
        '--profile',
        'rhel9',
      ])
    ).code,
    0,
  );
});
after(async () => {
  await server?.kill();
  rmSync(work, { recursive: true, force: true });
});

test('kvmfleet events follows host boot steps and activity as they happen', { timeout: 60_000 }, async () => {
  const child = spawn(
    process.execPath,
    [KVMFLEET_BIN, '--url', server.url, '--json', 'events', '--types', 'host,activity'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const events: { type: string; host?: string; kind?: string; counts?: Record<string, number> }[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
  });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // connected
    // The machine asks from its reserved address (127.80.0.x is local on loopback): a MAC alone gets no install.
    const script = await httpFrom('127.80.0.10', `${server.bootUrl}/boot/52-54-00-ee-00-01?platform=pcbios`);
    assert.equal(script.status, 200);
    await (await fetch(`${server.bootUrl}/boot/52-54-00-ee-00-99`)).text(); // an unknown machine
    // Host events arrive within a poll (1 s); activity summaries every 5 s: wait for both, up to 20 s.
    const kinds = () => events.filter((e) => e.type === 'host').map((e) => `${e.host} ${e.kind}`);
    const scriptsCounted = () =>
      events.filter((e) => e.type === 'activity').reduce((sum, e) => sum + (e.counts!.script ?? 0), 0);
    const expected = ['hv1.lab build-started', 'hv1.lab script', 'discovered-525400ee0099 discovered'];
    for (let i = 0; i < 200 && !(expected.every((k) => kinds().includes(k)) && scriptsCounted() >= 2); i++)
      await new Promise((r) => setTimeout(r, 100));
    for (const kind of expected) assert.ok(kinds().includes(kind), `${kind} in ${kinds().join(', ')}`);
    assert.ok(
      scriptsCounted() >= 2,
      `activity summaries counted both scripts: ${JSON.stringify(events.filter((e) => e.type === 'activity'))}`,
    );
  } finally {
    child.kill();
  }
  const bad = await runCli(server.url, ['events', '--types', 'host,gossip']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown event type\(s\) gossip/);
});
