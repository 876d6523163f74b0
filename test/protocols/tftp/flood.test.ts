/**
 * The TFTP role under a flood of requests that will never be acknowledged (spoofed sources asking
 * for `timeout 255`): a real client's fetch still works in its normal time, memory stays bounded
 * and /metrics shows the limits at work. Also: an unknown mode gets ERROR 4, a leading '/' names
 * the root, and netascii is converted once per file version. Real clients and datagrams in namespaces.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeRequest, Opcode } from '../../../src/protocols/tftp/packet.ts';
import { createNamespacePair, type NamespacePair } from '../../helpers/netns.ts';
import { startServer, type ServerProcess } from '../../helpers/server.ts';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const SPOOFED_SOURCES = 20;

describe('TFTP under a request flood', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'kvt-tftpflood-'));
  const root = join(work, 'root');
  let net: NamespacePair;
  let server: ServerProcess;
  const metrics = async () => (await net.server.exec('curl', ['-sS', `${server.url}/metrics`])).stdout;
  const metric = (text: string, name: string) =>
    Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text)?.[1]);

  before(async () => {
    rmSync(root, { recursive: true, force: true });
    await import('node:fs').then((fs) => fs.mkdirSync(root, { recursive: true }));
    writeFileSync(join(root, 'notes.txt'), 'line one\nline two\r\nthree\n'.repeat(1000));
    net = await createNamespacePair('tfl');
    for (let i = 0; i < SPOOFED_SOURCES; i++)
      await net.client.exec('ip', ['addr', 'add', `${net.subnet}.${200 + i}/24`, 'dev', net.client.device]);
    server = await startServer(
      [
        '--roles',
        'api,tftp',
        '--data-dir',
        'memory://',
        '--tftp-root',
        root,
        '--tftp-listen',
        `${net.server.ip}:69`,
        '--log-level',
        'warn',
      ],
      {},
      60_000,
      { netns: net.server.name },
    );
  });
  after(async () => {
    await server?.kill();
    await net?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test('7 000 never-acknowledged RRQs (timeout 255) from 20 addresses leave tftp-hpa and atftp fetching in their normal time', async () => {
    const rrq = encodeRequest(
      Opcode.Rrq,
      'ipxe.efi',
      'octet',
      new Map([
        ['timeout', '255'],
        ['blksize', '1468'],
        ['tsize', '0'],
        ['windowsize', '64'],
      ]),
    ).toString('base64');
    // 7 000 requests in ~3 s (more than the old 5 000-transfer cap), from 20 addresses and many ports; nothing is ever acknowledged (a spoofer never sees the OACK).
    const flood = `
      const dgram = require('dgram'); const rrq = Buffer.from('${rrq}', 'base64');
      const sockets = []; for (let i = 0; i < ${SPOOFED_SOURCES}; i++) { const s = dgram.createSocket('udp4'); s.bind(0, '${net.subnet}.' + (200 + i)); sockets.push(s); }
      let sent = 0; const total = 7000;
      function burst() { for (let i = 0; i < 25 && sent < total; i++, sent++) sockets[sent % sockets.length].send(rrq, 69, '${net.server.ip}');
        if (sent < total) setTimeout(burst, 10); else setTimeout(() => { for (const s of sockets) s.close(); }, 300); }
      setTimeout(burst, 200);`;
    const flooding = net.client.exec(process.execPath, ['-e', flood], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1200)); // in the middle of the flood
    const expected = sha(readFileSync('/usr/lib/ipxe/undionly.kpxe'));
    const started = Date.now();
    await net.client.exec(
      'tftp',
      ['-m', 'binary', net.server.ip, '-c', 'get', '/undionly.kpxe', join(work, 'hpa.kpxe')],
      { timeoutMs: 30_000 },
    );
    const hpaMs = Date.now() - started;
    assert.equal(
      sha(readFileSync(join(work, 'hpa.kpxe'))),
      expected,
      'tftp-hpa got /undionly.kpxe (leading slash: the root)',
    );
    await flooding;
    // All 7 000 sent, none acknowledged: before the limits, they held every slot (for 21 minutes each).
    const after = Date.now();
    await net.client.exec(
      'tftp',
      ['-m', 'binary', net.server.ip, '-c', 'get', 'undionly.kpxe', join(work, 'hpa2.kpxe')],
      { timeoutMs: 30_000 },
    );
    await net.client.exec(
      'atftp',
      ['--option', 'blksize 1428', '-g', '-r', 'ipxe.efi', '-l', join(work, 'atftp.efi'), net.server.ip, '69'],
      { timeoutMs: 30_000 },
    );
    const afterMs = Date.now() - after;
    assert.equal(sha(readFileSync(join(work, 'hpa2.kpxe'))), expected);
    assert.equal(sha(readFileSync(join(work, 'atftp.efi'))), sha(readFileSync('/usr/lib/ipxe/ipxe.efi')));
    assert.ok(hpaMs < 10_000, `tftp-hpa took ${hpaMs} ms during the flood`);
    assert.ok(afterMs < 15_000, `tftp-hpa and atftp took ${afterMs} ms right after it`);
    const text = await metrics();
    assert.ok(metric(text, 'kvmfleet_tftp_active') <= 2000, 'total limit');
    assert.ok(metric(text, 'kvmfleet_tftp_unconfirmed') <= 256, 'unconfirmed transfers bounded');
    assert.ok(
      metric(text, 'kvmfleet_tftp_evicted_total') + metric(text, 'kvmfleet_tftp_busy_total{limit="per-source"}') >=
        4000,
      'the limits refused or evicted the flood',
    );
    assert.match(text, /kvmfleet_tftp_memory_bytes\{kind="files"\} \d+/);
    // An abandoned transfer frees its slot within seconds: none is left a while after the flood.
    let unconfirmed = Infinity;
    for (let i = 0; i < 40 && unconfirmed > 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      unconfirmed = metric(await metrics(), 'kvmfleet_tftp_unconfirmed');
    }
    assert.equal(unconfirmed, 0, 'every unacknowledged transfer gave up within 20 s');
  });

  test('an unknown mode gets ERROR 4; netascii is converted once per file version', async () => {
    const bad = Buffer.concat([Buffer.from([0, 1]), Buffer.from('notes.txt\0binary-please\0', 'latin1')]).toString(
      'base64',
    );
    const probe = `const s=require('dgram').createSocket('udp4');s.on('message',m=>{process.stdout.write(m.toString('hex'));process.exit(0)});s.bind(0,()=>s.send(Buffer.from('${bad}','base64'),69,'${net.server.ip}'));setTimeout(()=>process.exit(3),3000)`;
    const { stdout } = await net.client.exec(process.execPath, ['-e', probe]);
    assert.equal(stdout.slice(0, 8), '00050004', 'ERROR, code 4 (illegal operation)');
    const expected = readFileSync(join(root, 'notes.txt'), 'latin1').replace(/\r?\n/g, '\n');
    for (const n of [1, 2, 3]) {
      await net.client.exec('tftp', [
        '-m',
        'ascii',
        net.server.ip,
        '-c',
        'get',
        'notes.txt',
        join(work, `notes-${n}.txt`),
      ]);
      // tftp-hpa turns netascii back into local text: CR LF → LF, CR NUL → CR.
      assert.equal(readFileSync(join(work, `notes-${n}.txt`), 'latin1').replace(/\r?\n/g, '\n'), expected);
    }
    const netascii = metric(await metrics(), 'kvmfleet_tftp_memory_bytes{kind="netascii"}');
    const size = readFileSync(join(root, 'notes.txt')).length;
    assert.ok(
      netascii > size && netascii < 3 * size,
      `one converted copy (and its original) held: ${netascii} bytes for a ${size}-byte file`,
    );
  });
});
