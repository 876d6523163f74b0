/**
 * The console over TLS in Chromium: `kvmfleet serve --tls-cert/--tls-key` with a self-signed
 * certificate; the CLI with --cacert makes the first admin and the inventory; Chromium, trusting
 * that one certificate by its SPKI hash (not every certificate), signs in over HTTP/2 and lists the
 * hosts. A Chromium that does not trust it is refused the page.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-console-tls-'));
const cert = join(work, 'cert.pem');
const key = join(work, 'key.pem');
const PASSWORD = 'correct horse battery staple';
let server: ServerProcess;
const browsers: Browser[] = [];

/** base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list names. */
const spkiHash = (pem: string) =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

before(async () => {
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
  for (const browser of browsers) await browser.close();
  await server?.kill();
  rmSync(work, { recursive: true, force: true });
});

const cli = async (args: string[], input?: string) => {
  const result = await runCli(server.url, ['--cacert', cert, ...args], input);
  assert.equal(result.code, 0, `kvmfleet ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
};

test(
  'over TLS: the CLI with --cacert sets up, Chromium trusting the certificate signs in and lists the hosts',
  { timeout: 180_000 },
  async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await cli(['user', 'add', 'alice', '--role', 'admin', '--password-stdin'], `${PASSWORD}\n`);
    const token = /kvmf_[A-Za-z0-9_-]{43}/.exec(
      await runCli(server.url, ['--cacert', cert, 'login', 'alice'], `${PASSWORD}\n`).then((r) => r.stdout + r.stderr),
    )?.[0];
    assert.ok(token, 'a session token from login');
    writeFileSync(
      join(work, 'site.yaml'),
      'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 10.77.0.0/24, dynamicRange: { start: 10.77.0.100, end: 10.77.0.200 } }\nprofiles:\n  - { name: rhel9-kvm, os: rhel9, installTreeUrl: "http://mirror.invalid/rhel9" }\n',
    );
    writeFileSync(
      join(work, 'hosts.csv'),
      'hostname,mac,ip,network,profile\nhv1.lab.example.com,52:54:00:7e:00:01,10.77.0.11,lab-hv,rhel9-kvm\nhv2.lab.example.com,52:54:00:7e:00:02,10.77.0.12,lab-hv,rhel9-kvm\n',
    );
    const env = { KVMFLEET_TOKEN: token };
    for (const file of ['site.yaml', 'hosts.csv']) {
      const result = await runCli(server.url, ['--cacert', cert, 'import', join(work, file)], undefined, env);
      assert.equal(result.code, 0, result.stderr);
    }
    const listed = await runCli(server.url, ['--cacert', cert, '--json', 'host', 'list'], undefined, env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { hostname: string }[]).map((h) => h.hostname),
      ['hv1.lab.example.com', 'hv2.lab.example.com'],
    );

    // Chromium trusting exactly this certificate's key.
    const trusting = await launchChromium({
      args: [`--ignore-certificate-errors-spki-list=${spkiHash(readFileSync(cert, 'utf8'))}`],
    });
    browsers.push(trusting);
    const page = await trusting.newPage();
    const first = await page.goto(`${server.url}/console/`);
    assert.equal(first?.status(), 200);
    assert.equal(
      await page.evaluate(
        () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol,
      ),
      'h2',
      'HTTP/2 over TLS',
    );
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=who]');
    await page.goto(`${server.url}/console/#/hosts`);
    await page.waitForSelector('tr[data-host="hv2.lab.example.com"]');
    assert.deepEqual(await page.$$eval('tr[data-host]', (rows) => rows.map((r) => r.getAttribute('data-host'))), [
      'hv1.lab.example.com',
      'hv2.lab.example.com',
    ]);

    // The trust is that certificate's, not a blanket one: a browser without it gets no page.
    const untrusting = await launchChromium();
    browsers.push(untrusting);
    await assert.rejects(
      (await untrusting.newPage()).goto(`${server.url}/console/`),
      /ERR_CERT_AUTHORITY_INVALID|ERR_CERT/,
    );
  },
);
