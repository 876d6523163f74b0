/**
 * The API over TLS with a self-signed certificate (openssl): the CLI verifies it with --cacert (or
 * KVMFLEET_CACERT) and refuses it without; a renewed certificate is taken on SIGHUP; and serve
 * refuses a non-loopback API without TLS unless --insecure-http, saying why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-tls-'));
const cert = join(work, 'cert.pem');
const key = join(work, 'key.pem');
let server: ServerProcess;

const makeCertificate = () =>
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );

/** The fingerprint of the certificate the server presents now. */
const served = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ca: readFileSync(cert), servername: 'localhost', rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.end();
      },
    );
    socket.on('error', reject);
  });

before(async () => {
  makeCertificate();
  server = await startServer([
    '--tls-cert',
    cert,
    '--tls-key',
    key,
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

test(
  'the API serves HTTPS; the CLI verifies it with --cacert or KVMFLEET_CACERT, and refuses it without',
  { timeout: 60_000 },
  async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const withCa = await runCli(server.url, ['--cacert', cert, 'site', 'add', 'tls-site']);
    assert.equal(withCa.code, 0, withCa.stderr);
    const listed = await runCli(server.url, ['--json', 'site', 'list'], undefined, { KVMFLEET_CACERT: cert });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /tls-site/);
    const without = await runCli(server.url, ['site', 'list']);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /self[- ]signed certificate|unable to verify|certificate/i);
    const plain = await runCli(server.url.replace('https:', 'http:'), ['site', 'list']);
    assert.equal(plain.code, 1, 'plain HTTP on the TLS port gets nowhere');
  },
);

test('a renewed certificate is served after SIGHUP, without a restart', { timeout: 60_000 }, async () => {
  const port = Number(new URL(server.url).port);
  const before = await served(port);
  assert.equal(before, new X509Certificate(readFileSync(cert)).fingerprint256);
  makeCertificate();
  server.child.kill('SIGHUP');
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await served(port);
  }
  assert.equal(after, new X509Certificate(readFileSync(cert)).fingerprint256, 'the new certificate');
  assert.equal((await runCli(server.url, ['--cacert', cert, 'site', 'list'])).code, 0, 'and the API answers with it');
});

test(
  'serve refuses a non-loopback API without TLS unless --insecure-http, and says why',
  { timeout: 60_000 },
  async () => {
    const env = { KVMFLEET_BOOTSTRAP_ADMIN_TOKEN: `kvmf_${'c'.repeat(43)}` };
    await assert.rejects(
      startServer(['--listen', '0.0.0.0:0', '--data-dir', join(work, 'exposed'), '--log-level', 'warn'], env, 30_000),
      /without TLS, so passwords and tokens would cross the network in clear: give --tls-cert FILE --tls-key FILE, or --insecure-http/,
    );
    const tls = await startServer(
      [
        '--listen',
        '0.0.0.0:0',
        '--tls-cert',
        cert,
        '--tls-key',
        key,
        '--data-dir',
        join(work, 'exposed'),
        '--log-level',
        'warn',
      ],
      env,
      30_000,
    );
    try {
      assert.match(tls.url, /^https:/);
    } finally {
      await tls.kill();
    }
  },
);

test('HTTP/2 over TLS (ALPN h2), beside HTTP/1.1', { timeout: 30_000 }, async () => {
  const { connect: h2connect } = await import('node:http2');
  const session = h2connect(server.url, { ca: readFileSync(cert) });
  try {
    const { status, body, protocol } = await new Promise<{ status: number; body: string; protocol: string }>(
      (resolve, reject) => {
        const stream = session.request({ ':path': '/healthz' });
        let body = '';
        let status = 0;
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
        stream.on('end', () => resolve({ status, body, protocol: session.alpnProtocol ?? '' }));
        stream.on('error', reject);
        stream.end();
      },
    );
    assert.equal(protocol, 'h2');
    assert.equal(status, 200);
    assert.match(body, /"status":"ok"/);
    // The live event stream too (HTTP/2 has no connection headers), and the open first run by :authority.
    const events = await new Promise<{ status: number; type: string; first: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/api/v1/events' });
      let status = 0;
      let type = '';
      stream.on(
        'response',
        (headers) => ((status = Number(headers[':status'])), (type = String(headers['content-type']))),
      );
      stream.on('data', (chunk: Buffer) => {
        resolve({ status, type, first: chunk.toString() });
        stream.close();
      });
      stream.on('error', reject);
      stream.end();
    });
    assert.deepEqual([events.status, events.type], [200, 'text/event-stream']);
    assert.match(events.first, /kvmfleet live events/);
  } finally {
    session.close();
  }
});
