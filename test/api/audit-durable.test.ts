/**
 * The audit entry of a mutating call is written before its handler runs: a client that disconnects
 * is still on record, and a call whose entry cannot be written is refused (503) and changes nothing.
 * Real HTTP on raw sockets.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { buildApi } from '../../src/api/app.ts';
import { createToken, createUser } from '../../src/auth/accounts.ts';
import { listAudit } from '../../src/auth/audit.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { ErrorCode } from '../../src/errors.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;
let token = '';

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  app = await buildApi({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    bootBaseUrl: 'http://boot.test:8081',
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
  await createUser(store.db, { name: 'ops', role: 'operator' });
  token = (await createToken(store.db, { user: 'ops', name: 't' })).token;
});
after(async () => {
  await app.close();
  await store.close();
});

test('a client that disconnects before the answer is still in the audit log', async () => {
  const body = JSON.stringify({ name: 'gone-site' });
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /api/v1/sites?via=disconnect HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
      setTimeout(() => (socket.destroy(), resolve()), 20); // gone before (or as) it is answered
    });
    socket.on('error', reject);
  });
  let entry;
  for (let i = 0; i < 50 && !entry; i++) {
    entry = (await listAudit(store.db, { actor: 'ops' })).find((e) => e.detail.path === '/api/v1/sites?via=disconnect');
    if (!entry || entry.result === 'pending') await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(entry, 'the call is on record');
  assert.equal(entry.action, 'POST /api/v1/sites');
  assert.notEqual(entry.result, '', 'with how it ended (its status, or that the client disconnected)');
});

test('a mutating call whose audit entry cannot be written is refused (503) and changes nothing', async () => {
  await sql`alter table audit_log rename to audit_log_away`.execute(store.db);
  try {
    const reply = await rawRequest(port, {
      method: 'POST',
      target: '/api/v1/sites',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'unaudited' }),
    });
    assert.equal(reply.status, 503);
    assert.equal(JSON.parse(reply.body).error.code, ErrorCode.AuditUnavailable);
    const read = await rawRequest(port, {
      method: 'GET',
      target: '/api/v1/sites',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(read.status, 200, 'reads are not audited, so they go on');
    assert.doesNotMatch(read.body, /unaudited/, 'the site was not created');
  } finally {
    await sql`alter table audit_log_away rename to audit_log`.execute(store.db);
  }
});
