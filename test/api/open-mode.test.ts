/**
 * The open first run (no user yet): only for a request from loopback that also names a loopback
 * Host. A page of another origin that reaches 127.0.0.1 (DNS rebinding) sends its own Host: refused,
 * and the attempt is audited. Real HTTP on raw sockets.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { countUsers } from '../../src/auth/accounts.ts';
import { listAudit } from '../../src/auth/audit.ts';
import { isLoopbackAddress, isLoopbackHost } from '../../src/auth/loopback.ts';
import { ErrorCode } from '../../src/errors.ts';
import type { Store } from '../../src/store/open.ts';
import { startTestApi, type TestApi } from '../helpers/api-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;

let api: TestApi;

before(async () => {
  ({ store, app, port } = api = await startTestApi());
});
after(async () => api.close());

const post = (target: string, host: string | undefined, body: unknown) =>
  rawRequest(port, {
    method: 'POST',
    target,
    headers: { 'content-type': 'application/json', ...(host === undefined ? {} : { host }) },
    body: JSON.stringify(body),
  });

test('loopback names and addresses', () => {
  for (const host of [
    'localhost',
    'localhost:8080',
    'LOCALHOST.',
    '127.0.0.1',
    '127.0.0.1:8080',
    '127.9.8.7:1',
    '[::1]',
    '[::1]:8080',
  ])
    assert.ok(isLoopbackHost(host), host);
  for (const host of [
    'attacker.example',
    'attacker.example:8080',
    'localhost.attacker.example',
    '127.0.0.1.nip.io',
    '10.0.0.1',
    '[::2]',
    '[::ffff:10.0.0.1]',
    '',
    'localhost:80:80',
    '127.0.0.1@evil',
  ])
    assert.ok(!isLoopbackHost(host), host);
  assert.ok(isLoopbackAddress('127.0.0.1') && isLoopbackAddress('::ffff:127.0.0.2') && isLoopbackAddress('::1'));
  assert.ok(!isLoopbackAddress('10.1.2.3') && !isLoopbackAddress('::ffff:10.1.2.3') && !isLoopbackAddress(undefined));
});

test('with no user yet, a loopback request naming a foreign Host cannot create an admin', async () => {
  for (const host of ['attacker.example', `attacker.example:${port}`, `127.0.0.1.attacker.example:${port}`]) {
    const reply = await post('/api/v1/users', host, { name: 'evil', role: 'admin', withToken: true });
    assert.equal(reply.status, 403, `Host: ${host} answered ${reply.status}`);
    assert.equal(JSON.parse(reply.body).error.code, ErrorCode.OpenModeRefused);
    assert.doesNotMatch(reply.body, /kvmf_/);
  }
  const read = await rawRequest(port, {
    method: 'GET',
    target: '/api/v1/sites',
    headers: { host: 'attacker.example' },
  });
  assert.equal(read.status, 403, 'reads are refused as well');
  assert.equal(await countUsers(store.db), 0);
  const refused = (await listAudit(store.db)).filter((e) => e.action === 'POST /api/v1/users');
  assert.equal(refused.length, 3, 'each attempt is audited');
  assert.ok(refused.every((e) => e.result === '403' && e.actor === 'anonymous'));
});

test('the machine itself (loopback, Host: 127.0.0.1 or localhost) makes the first admin', async () => {
  const reply = await post('/api/v1/users', `127.0.0.1:${port}`, { name: 'admin', role: 'admin', withToken: true });
  assert.equal(reply.status, 201, reply.body);
  assert.match(JSON.parse(reply.body).token, /^kvmf_/);
  assert.equal(
    (await rawRequest(port, { method: 'GET', target: '/api/v1/sites', headers: { host: `localhost:${port}` } })).status,
    401,
    'from now on a token is needed',
  );
});
