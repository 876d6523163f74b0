/**
 * The summary on the real boot HTTP role (it adds summarizeBootHttp's hook itself): the hook sees the routes the role really
 * has (so the kinds table matches them), counts at info once per interval, and writes each request
 * at debug through the role's own redacting serializer (boot/log-redact.ts) — a build token never appears. Requests by
 * inject (no socket); the interval timer and clock are test doubles.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { createLogger } from '../../src/logging/index.ts';
import { openStore, type Store } from '../../src/store/open.ts';

let store: Store;
let app: FastifyInstance;
let fire: () => void;
let now = 0;
const records: { level: number; msg: string; [key: string]: unknown }[] = [];
const raw: string[] = [];

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 127.80.0.0/24 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab/trees/rhel9" }\n',
  );
  await importHostsCsv(
    store.db,
    'hostname,mac,ip,network,profile\nh1.lab,52:54:00:80:00:10,127.80.0.10,lab-hv,rhel9\n',
  );
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      raw.push(line);
      records.push(JSON.parse(line));
    }
  });
  let callback: (() => void) | undefined;
  // The role adds the summary itself whenever it logs; the test gives it a clock and a timer of its own.
  app = await buildBootHttp({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    logger: { level: 'debug', stream },
    requestSummary: {
      now: () => now,
      timers: { setInterval: (cb) => (callback = cb), clearInterval: () => {} }, // test double of the timer
    },
  });
  fire = () => callback?.();
  await app.ready();
});
after(async () => {
  await app.close();
  await store.close();
});

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('boot requests: one summary line per interval with kinds and statuses; each at debug, token redacted', async () => {
  const get = (url: string) => app.inject({ url, remoteAddress: '127.80.0.10', headers: { host: 'boot.lab' } });
  const script = await get('/boot/52-54-00-80-00-10?platform=pcbios');
  const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(script.body)?.[1];
  assert.ok(token, script.body);
  assert.equal((await get(`/boot/ks/${token}`)).statusCode, 200);
  assert.equal((await get(`/boot/files/${token}/kernel`)).statusCode, 302);
  assert.equal((await get(`/boot/files/${token}/initrd`)).statusCode, 302);
  assert.equal((await get('/boot/ks/not-a-token')).statusCode, 403);
  assert.equal((await get('/nothing/here')).statusCode, 404);
  assert.equal((await get('/healthz')).statusCode, 200);
  assert.equal((await get('/boot/52:54:00:80:00:10')).statusCode, 200);
  await settle();

  const summaries = () => records.filter((r) => r.summary === 'boot http');
  assert.equal(summaries().length, 0, 'nothing counted at info before the interval');
  now += 60_000;
  fire();
  await settle();
  assert.deepEqual(
    summaries().map((r) => r.msg),
    [
      'boot http: 8 requests (script 2, kickstart 2, kernel 1, initrd 1, unmatched 1, health 1; 1 × 403, 1 × 404) in 60 s',
    ],
  );

  const debug = records.filter((r) => r.level === 20 && r.msg === 'request completed');
  assert.equal(debug.length, 8, 'one debug line per request');
  const urls = debug.map((r) => (r.req as { url: string }).url);
  assert.ok(urls.includes('/boot/ks/[redacted]') && urls.includes('/boot/files/[redacted]/kernel'), urls.join(' '));
  assert.deepEqual(
    raw.filter((line) => line.includes(token)),
    [],
    'no line holds the token',
  );
  assert.ok(debug.every((r) => typeof r.reqId === 'string' && typeof r.responseTime === 'number'));
});

test('createLogger: the same formats for the roles that are no Fastify app', async () => {
  const out = Object.assign(new PassThrough(), { isTTY: true });
  const lines: string[] = [];
  out.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const log = createLogger({ level: 'info', name: 'tftp', stream: out, env: { NO_COLOR: '1' } });
  log.info({ transfers: 3 }, 'listening');
  log.debug('hidden');
  await settle();
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[tftp\] listening transfers=3$/);
});
