/**
 * Build tokens never reach the logs: the boot HTTP role's request log (captured from its stream)
 * shows /boot/ks/, /boot/files/ and /boot/built/ with the token replaced, however the URL is spelled.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;
const log: string[] = [];

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 127.78.0.0/24 }\nprofiles:\n  - { name: rhel9, os: rhel9, installTreeUrl: "http://boot.lab/trees/rhel9" }\n',
  );
  await importHostsCsv(
    store.db,
    'hostname,mac,ip,network,profile\nh1.lab,52:54:00:78:00:10,127.78.0.10,lab-hv,rhel9\n',
  );
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => log.push(...chunk.toString().split('\n').filter(Boolean)));
  app = await buildBootHttp({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    logger: { level: 'debug', stream }, // each request's line is at debug (its counts at info)
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
after(async () => {
  await app.close();
  await store.close();
});

const send = (method: string, target: string) =>
  rawRequest(port, { method, target, localAddress: '127.78.0.10', headers: { host: 'boot.lab' } });

test('request logs never show a build token, whatever the spelling', async () => {
  const script = await send('GET', '/boot/52-54-00-78-00-10?platform=pcbios');
  const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(script.body)?.[1];
  assert.ok(token, script.body);
  const answers = [
    await send('GET', `/boot/ks/${token}`),
    await send('GET', `/boot/files/${token}/kernel`),
    await send('GET', `/boot/%6bs/${token}`),
    await send('GET', `http://boot.lab/boot/ks/${token}`),
    await send('GET', `/boot/ks/${token}/extra`),
    await send('GET', `/boot//ks/${token}`),
    await send('POST', `/boot/built/${token}`),
  ];
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 302, 200, 200, 404, 404, 200],
    'the requests reached the routes they name',
  );
  await new Promise((r) => setTimeout(r, 100)); // the logger writes asynchronously
  const requests = log.filter((line) => /"url"/.test(line));
  assert.ok(requests.length >= 8, `the requests are logged (${requests.length} lines)`);
  const leaks = log.filter((line) => line.includes(token));
  assert.deepEqual(leaks, [], 'no log line holds the token');
  const urls = requests.map((line) => (JSON.parse(line) as { req?: { url: string } }).req?.url).filter(Boolean);
  for (const url of ['/boot/ks/[redacted]', '/boot/files/[redacted]/kernel', '/boot/built/[redacted]'])
    assert.ok(urls.includes(url), `${url} in ${urls.join(' ')}`);
  assert.ok(urls.includes('/boot/52-54-00-78-00-10?platform=pcbios'), 'other URLs are logged as they are');
});
