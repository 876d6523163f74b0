/**
 * Auth and audit against a real `kvmfleet serve`, through the CLI: the open first run on loopback,
 * the first admin, roles (a viewer cannot change anything), scoped tokens, password login, wrong
 * tokens (401), the audit log of every mutating call, and a server that refuses to listen beyond
 * loopback with no user.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-auth-'));
let server: ServerProcess;
const as = (token: string | undefined, ...args: string[]) =>
  runCli(server.url, [...(token ? ['--token', token] : []), ...args]);
const tokenIn = (text: string) => /kvmf_[A-Za-z0-9_-]{43}/.exec(text)?.[0];

before(async () => {
  server = await startServer(['--data-dir', join(work, 'data'), '--log-level', 'warn']);
});
after(async () => {
  await server?.kill();
  rmSync(work, { recursive: true, force: true });
});

test('roles, scoped tokens, login, 401/403, and the audit log', { timeout: 120_000 }, async () => {
  // First run on loopback, no user yet: the API is open, so the first admin can be made here.
  assert.match((await as(undefined, 'whoami')).stdout, /no users yet: the API is open on loopback/);
  assert.equal((await as(undefined, 'site', 'add', 'lab')).code, 0);
  const first = await as(undefined, 'user', 'add', 'admin', '--role', 'admin', '--with-token');
  assert.equal(first.code, 0, first.stderr);
  const admin = tokenIn(first.stdout)!;
  assert.ok(admin);

  // From now on a token is needed.
  const anonymous = await as(undefined, 'site', 'list');
  assert.equal(anonymous.code, 1);
  assert.match(anonymous.stderr, /this API needs a token.*\[KVMF_ERR_UNAUTHORIZED\]/);
  assert.equal((await as(undefined, 'site', 'add', 'sneaky')).code, 1);
  const forged = await as(`kvmf_${'A'.repeat(43)}`, 'site', 'add', 'forged');
  assert.match(forged.stderr, /unknown or expired token \[KVMF_ERR_UNAUTHORIZED\]/);
  assert.match((await as(admin, 'whoami')).stdout, /admin \(admin; read, write, admin\)/);

  const ops = tokenIn((await as(admin, 'user', 'add', 'ops', '--role', 'operator', '--with-token')).stdout)!;
  assert.equal(
    (
      await runCli(
        server.url,
        ['--token', admin, 'user', 'add', 'view', '--role', 'viewer', '--password-stdin'],
        'correct horse battery\n',
      )
    ).code,
    0,
  );
  const wrong = await runCli(server.url, ['login', 'view'], 'not the password\n');
  assert.match(wrong.stderr, /wrong user name or password \[KVMF_ERR_UNAUTHORIZED\]/);
  const login = await runCli(server.url, ['login', 'view'], 'correct horse battery\n');
  assert.equal(login.code, 0, login.stderr);
  const view = tokenIn(login.stdout)!;

  // A viewer reads, and may change nothing.
  assert.equal((await as(view, 'site', 'list')).code, 0);
  const refused = await as(view, 'site', 'add', 'dc2');
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /view \(viewer.*\) may not change things \[KVMF_ERR_FORBIDDEN\]/);
  assert.match((await as(view, 'audit')).stderr, /\[KVMF_ERR_FORBIDDEN\]/);
  const kickstart = await fetch(`${server.url}/api/v1/hosts/nope/kickstart`, {
    headers: { authorization: `Bearer ${view}` },
  });
  assert.equal(kickstart.status, 403, 'a Kickstart holds the root password hash: not for viewers');
  assert.equal(
    (await fetch(`${server.url}/api/v1/hosts/nope/kickstart`, { headers: { authorization: `Bearer ${ops}` } })).status,
    404,
    'an operator may (the host does not exist)',
  );

  // An operator changes things; a token scoped to read cannot, and no one grants more than their role.
  assert.equal((await as(ops, 'site', 'add', 'dc2')).code, 0);
  const readOnly = tokenIn((await as(ops, 'token', 'create', 'dashboards', '--scope', 'read')).stdout)!;
  assert.equal((await as(readOnly, 'site', 'list')).code, 0);
  assert.match((await as(readOnly, 'site', 'add', 'dc3')).stderr, /token scopes read\) may not change things/);
  assert.match(
    (await as(ops, 'token', 'create', 'root', '--scope', 'admin')).stderr,
    /a operator's token cannot have scope admin/,
  );
  assert.match((await as(ops, 'user', 'add', 'eve', '--role', 'admin')).stderr, /\[KVMF_ERR_FORBIDDEN\]/);
  assert.match((await as(admin, 'user', 'rm', 'admin')).stderr, /the last admin cannot be removed/);

  // Revoked is revoked.
  const listed = JSON.parse((await as(ops, '--json', 'token', 'list')).stdout) as { id: number; name: string }[];
  assert.equal((await as(ops, 'token', 'revoke', String(listed.find((t) => t.name === 'dashboards')!.id))).code, 0);
  assert.match((await as(readOnly, 'site', 'list')).stderr, /unknown or expired token/);

  // The audit log has every mutating call, allowed or not: who, what, on what, how it ended.
  const audit = JSON.parse((await as(admin, '--json', 'audit', '--limit', '200')).stdout) as {
    actor: string;
    action: string;
    target: string;
    result: string;
  }[];
  const has = (actor: string, action: string, result: string) =>
    audit.some((e) => e.actor === actor && e.action === action && e.result === result);
  assert.ok(has('anonymous', 'POST /api/v1/sites', '201'), 'the open first run is on record');
  assert.ok(has('anonymous', 'POST /api/v1/sites', '401'), 'the refused anonymous call');
  assert.ok(has('invalid token', 'POST /api/v1/sites', '401'));
  assert.ok(has('ops', 'POST /api/v1/sites', '201'));
  assert.ok(has('view', 'POST /api/v1/sites', '403'));
  assert.ok(has('login:view', 'POST /api/v1/login', '401') && has('login:view', 'POST /api/v1/login', '200'));
  assert.ok(has('admin', 'DELETE /api/v1/users/:name', '409'));
  assert.ok(audit.some((e) => e.actor === 'ops' && e.action === 'DELETE /api/v1/tokens/:id' && e.result === '204'));
  assert.ok(!audit.some((e) => e.action.startsWith('GET')), 'reads are not audited');
  assert.ok(!JSON.stringify(audit).includes('correct horse'), 'no password in the log');
});

test(
  'an API beyond loopback refuses to start with no user; a bootstrap token makes the first admin',
  { timeout: 60_000 },
  async () => {
    await assert.rejects(
      startServer(
        ['--listen', '0.0.0.0:0', '--insecure-http', '--data-dir', join(work, 'exposed'), '--log-level', 'warn'],
        {},
        30_000,
      ),
      /would listen beyond loopback with no user to authenticate/,
    );
    const token = `kvmf_${'b'.repeat(43)}`;
    const exposed = await startServer(
      ['--listen', '0.0.0.0:0', '--insecure-http', '--data-dir', join(work, 'exposed'), '--log-level', 'warn'],
      { KVMFLEET_BOOTSTRAP_ADMIN_TOKEN: token },
      30_000,
    );
    try {
      const url = exposed.url.replace('0.0.0.0', '127.0.0.1');
      assert.equal((await fetch(`${url}/api/v1/sites`)).status, 401, 'exposed: a token is always needed');
      assert.equal((await fetch(`${url}/api/v1/sites`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'probes stay open');
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
    } finally {
      await exposed.kill();
    }
  },
);

test(
  'the web console: its files are public, its data is not; signing out revokes the session token',
  { timeout: 60_000 },
  async () => {
    const root = await fetch(`${server.url}/`, { redirect: 'manual' });
    assert.deepEqual([root.status, root.headers.get('location')], [302, '/console/']);
    const index = await fetch(`${server.url}/console/`);
    assert.equal(index.status, 200, 'no token needed for the page itself');
    assert.match(index.headers.get('content-type') ?? '', /text\/html/);
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
    const html = await index.text();
    assert.match(html, /<div id="root">/);
    const script = /\/console\/assets\/[\w.-]+\.js/.exec(html)?.[0];
    assert.ok(script, html);
    const asset = await fetch(`${server.url}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
    for (const path of [
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/..%2f..%2fpackage.json',
      '/console/.vite/manifest.json',
    ]) {
      const r = await fetch(`${server.url}${path}`);
      const body = await r.text();
      assert.ok(!body.includes('"name": "kvmfleet"'), `${path} served the checkout's package.json`);
      if (r.status === 200) assert.match(body, /<div id="root">/, `${path}: only the console's own files`);
    }
    // Users exist (the test above): the data behind the console needs a token.
    assert.equal((await fetch(`${server.url}/api/v1/hosts`)).status, 401);

    const login = await fetch(`${server.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'view', password: 'correct horse battery' }),
    });
    assert.equal(login.status, 200);
    const { token } = (await login.json()) as { token: string };
    const whoami = () =>
      fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    assert.equal(await whoami(), 200);
    // A viewer changes nothing, but may end their own session.
    assert.equal(
      (await fetch(`${server.url}/api/v1/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }))
        .status,
      204,
    );
    assert.equal(await whoami(), 401, 'the session token is revoked');
  },
);

test(
  'repeated failed logins for a user are refused for a while (429, Retry-After), even with the right password',
  { timeout: 60_000 },
  async () => {
    const loginAs = (name: string, password: string) =>
      fetch(`${server.url}/api/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, password }),
      });
    for (let i = 0; i < 5; i++) assert.equal((await loginAs('view', `guess number ${i}`)).status, 401);
    const locked = await loginAs('view', 'correct horse battery');
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get('retry-after')) > 800, `Retry-After: ${locked.headers.get('retry-after')}`);
    assert.match(((await locked.json()) as { error: { code: string } }).error.code, /KVMF_ERR_TOO_MANY_ATTEMPTS/);
  },
);
