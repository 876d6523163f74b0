/** The mirror cache: one upstream fetch per file however many machines ask at once, then served from disk. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { MirrorCache, parseMirrors } from '../../src/boot/mirror.ts';
import { BootService } from '../../src/boot/service.ts';
import { openStore, type Store } from '../../src/store/open.ts';

const payload = randomBytes(3 << 20);
const requests: string[] = [];
let upstream: Server;
let app: FastifyInstance;
let store: Store;
let cache: MirrorCache;
const dir = mkdtempSync(join(tmpdir(), 'kvt-mirror-'));

before(async () => {
  // A plain upstream on loopback that answers slowly, so the 50 requests below overlap.
  upstream = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url !== '/rhel9/images/install.img') {
      res.writeHead(404).end();
      return;
    }
    setTimeout(() => res.writeHead(200, { 'content-length': payload.length }).end(payload), 200);
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const port = (upstream.address() as { port: number }).port;
  store = await openStore({ dataDir: 'memory://' });
  cache = new MirrorCache(join(dir, 'cache'), parseMirrors(`up=http://127.0.0.1:${port}/rhel9`));
  app = await buildBootHttp({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    mirrors: cache,
  });
});
after(async () => {
  await app.close();
  await store.close();
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

test('50 concurrent requests for one file cause one upstream fetch and all get the bytes', async () => {
  const replies = await Promise.all(
    Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: '/mirror/up/images/install.img' })),
  );
  for (const reply of replies) {
    assert.equal(reply.statusCode, 200);
    assert.ok(reply.rawPayload.equals(payload));
  }
  assert.deepEqual(requests, ['/rhel9/images/install.img']);
  const ranged = await app.inject({
    method: 'GET',
    url: '/mirror/up/images/install.img',
    headers: { range: 'bytes=10-19' },
  });
  assert.equal(ranged.statusCode, 206);
  assert.ok(ranged.rawPayload.equals(payload.subarray(10, 20)));
  assert.equal(requests.length, 1, 'served from the cache');
  assert.equal(cache.stats.upstreamFetches, 1);
});

test('upstream 404 is a 404; traversal and unknown mirrors are refused; nothing partial is left', async () => {
  assert.equal((await app.inject({ method: 'GET', url: '/mirror/up/nope.rpm' })).statusCode, 404);
  assert.equal((await app.inject({ method: 'GET', url: '/mirror/other/x' })).statusCode, 404);
  const climb = await app.inject({ method: 'GET', url: '/mirror/up/..%2f..%2fetc%2fpasswd' });
  assert.equal(climb.statusCode, 400);
  assert.ok(!requests.some((r) => r.includes('etc')));
  assert.throws(() => parseMirrors('bad'), /name=http/);
});
