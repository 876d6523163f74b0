/**
 * The boot HTTP role as started by `kvmfleet serve`, spoken to in raw HTTP over loopback:
 * RFC 9110 ranges on install trees, and a request without Host still gets whole URLs in its script.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-ranges-'));
const file = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
let server: ServerProcess;
let port = 0;

before(async () => {
  mkdirSync(join(work, 'trees', 'rhel9'), { recursive: true });
  writeFileSync(join(work, 'trees', 'rhel9', 'k'), file);
  server = await startServer([
    '--roles',
    'http',
    '--http-listen',
    '127.0.0.1:0',
    '--trees-dir',
    join(work, 'trees'),
    '--data-dir',
    join(work, 'data'),
    '--log-level',
    'warn',
  ]);
  port = Number(new URL(server.bootUrl).port);
});
after(async () => {
  await server?.kill();
  rmSync(work, { recursive: true, force: true });
});

/** One raw HTTP exchange: the request is sent exactly as written (no Host unless given). */
function raw(request: string): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request)); // not end(): a half-closed client may get no answer
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = all.subarray(0, split).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: all.subarray(split + 4) });
    });
  });
}
const get = (path: string, range?: string) =>
  raw(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${range ? `Range: ${range}\r\n` : ''}\r\n`,
  );

test('a suffix range longer than the file is the whole file (206); 416 says bytes */N; malformed ranges are ignored (200)', async () => {
  const suffix = await get('/trees/rhel9/k', 'bytes=-5000');
  assert.equal(suffix.status, 206);
  assert.equal(suffix.headers['content-range'], 'bytes 0-999/1000');
  assert.deepEqual(suffix.body, file);
  const tail = await get('/trees/rhel9/k', 'bytes=-100');
  assert.equal(tail.status, 206);
  assert.deepEqual(tail.body, file.subarray(900));
  const beyond = await get('/trees/rhel9/k', 'bytes=5000-6000');
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers['content-range'], 'bytes */1000');
  for (const malformed of ['bytes=0-0-0', 'bytes=5-1', 'bytes=x-y', 'bytes=0-1,5-6']) {
    const whole = await get('/trees/rhel9/k', malformed);
    assert.equal(whole.status, 200, malformed);
    assert.deepEqual(whole.body, file, malformed);
  }
  const plain = await get('/trees/rhel9/k', 'bytes=100-199');
  assert.equal(plain.status, 206);
  assert.deepEqual(plain.body, file.subarray(100, 200));
});

test('HTTP/1.0 without Host: the iPXE script chains to a whole URL (the address the request came in on)', async () => {
  const reply = await raw('GET /boot/52-54-00-7a-00-01 HTTP/1.0\r\n\r\n');
  assert.equal(reply.status, 200);
  const script = reply.body.toString();
  assert.match(script, /^#!ipxe/);
  assert.doesNotMatch(script, /https?:\/(?!\/)|https?:\/\/\//, 'no http:/boot or http:///boot');
  assert.match(script, new RegExp(`http://127\\.0\\.0\\.1:${port}/boot/`));
});
