/**
 * Spoofed failover heartbeats, for real: a secondary `kvmfleet serve` in a namespace whose
 * configured partner address belongs to an attacker namespace. Unauthenticated, wrongly keyed and
 * replayed beats from exactly that address do not keep it from taking over (partner-down after the
 * delay); authentic beats, sealed with the shared key, bring it back to normal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { createPostgresDatabase, viaUnixSocket } from '../helpers/stores.ts';

const AUTH = fileURLToPath(new URL('../../src/boot/failover-auth.ts', import.meta.url));
const KEY = 'a shared secret of the pair, 32+ bytes long';
const work = mkdtempSync(join(tmpdir(), 'kvt-fospoof-'));
let net: NamespacePair;
let server: ServerProcess;
let database: { url: string; drop(): Promise<void> };

before(async () => {
  database = await createPostgresDatabase();
  net = await createNamespacePair('fos');
  writeFileSync(join(work, 'key'), `${KEY}\n`);
  server = await startServer(
    [
      '--roles',
      'api,dhcp',
      '--dhcp-server-id',
      net.server.ip,
      '--dhcp-failover',
      'secondary',
      '--dhcp-peer',
      net.client.ip,
      '--dhcp-failover-key-file',
      join(work, 'key'),
      '--dhcp-partner-down-delay',
      '2',
      '--log-level',
      'warn',
    ],
    { KVMFLEET_DATABASE_URL: viaUnixSocket(database.url) },
    60_000,
    { netns: net.server.name },
  );
});
after(async () => {
  await server?.kill();
  await net?.cleanup();
  await database?.drop();
  rmSync(work, { recursive: true, force: true });
});

const state = async () =>
  (
    JSON.parse((await net.server.exec('curl', ['-sS', `${server.url}/api/v1/dhcp/stats`])).stdout) as {
      failover: { state: string };
    }
  ).failover.state;

/** Sends beats from the partner's address and port (647) for `seconds`: the attacker, or the real partner with the key. */
async function beats(kind: 'forged' | 'authentic', seconds: number): Promise<void> {
  const script = join(work, `${kind}.mts`);
  writeFileSync(
    script,
    `
    import { createSocket } from 'node:dgram';
    import { BeatSealer } from ${JSON.stringify(AUTH)};
    const s = createSocket('udp4');
    await new Promise((r) => s.bind(647, ${JSON.stringify(net.client.ip)}, r));
    const good = new BeatSealer(Buffer.from(${JSON.stringify(KEY)}));
    const captured = good.seal({ role: 'primary', state: 'normal' }); // one authentic beat, replayed below
    const wrong = new BeatSealer(Buffer.from('not the pair key at all, but long'));
    const send = (b) => s.send(b, 647, ${JSON.stringify(net.server.ip)});
    const timer = setInterval(() => {
      if (${JSON.stringify(kind)} === 'authentic') return send(good.seal({ role: 'primary', state: 'normal' }));
      send(Buffer.from(JSON.stringify({ kvmfleet: 1, role: 'primary', state: 'normal' }))); // the old, unauthenticated beat
      send(wrong.seal({ role: 'primary', state: 'normal' }));
      send(captured);
    }, 300);
    setTimeout(() => { clearInterval(timer); s.close(); }, ${seconds * 1000});
  `,
  );
  await net.client.exec(process.execPath, ['--import', 'tsx', script], { timeoutMs: (seconds + 30) * 1000 });
}

test(
  "forged, wrongly keyed and replayed beats from the partner's own address do not stop the takeover; authentic ones do",
  { timeout: 120_000 },
  async () => {
    await beats('forged', 8); // recover → (3 s silence) communications-interrupted → (2 s) partner-down
    assert.equal(await state(), 'partner-down', 'the forgeries were not heard');
    const metrics = (await net.server.exec('curl', ['-sS', `${server.url}/metrics`])).stdout;
    for (const reason of ['malformed', 'badMac', 'replayed'])
      assert.match(
        metrics,
        new RegExp(`kvmfleet_dhcp_failover_beats_refused_total\\{reason="${reason}"\\} [1-9]`),
        reason,
      );
    await beats('authentic', 2);
    assert.equal(await state(), 'normal', 'the real partner, with the key, is heard');
  },
);
