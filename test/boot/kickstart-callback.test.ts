/**
 * The Kickstart's %post callback, as rendered, run by a real shell and curl: it survives a boot
 * server that refuses connections and then answers 5xx (a restart, a store blip), and ends the host
 * built; a 4xx (a token no longer current) ends it at once. The failing boot server is a test double
 * in front of the real boot HTTP role: nothing listens at first, then it answers 503 once, then
 * passes the call on.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildBootHttp } from '../../src/boot/http.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { getHost, listHosts } from '../../src/fleet/hosts.ts';
import type { Host } from '../../src/fleet/model.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { freePort } from '../helpers/sshd.ts';

let store: Store;
let app: FastifyInstance;
let host: Host;

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  const boot = new BootService({ db: store.db, templates: new KickstartTemplates() });
  app = await buildBootHttp({ store, boot });
  const { yaml, csv } = generateEnterprise({ sites: 1, hostsPerSite: 1 });
  await importSiteYaml(store.db, yaml);
  await importHostsCsv(store.db, csv);
  [host] = (await listHosts(store.db)) as [Host];
});
after(async () => {
  await app.close();
  await store.close();
});

/** A build's token, and the %post commands of its Kickstart as served for a boot server at `base`. */
async function renderedCallback(base: string): Promise<{ token: string; script: string }> {
  const boot = await app.inject({
    method: 'GET',
    url: `/boot/${host.macs[0]!.replace(/:/g, '-')}`,
    headers: { host: 'boot.test:8081' },
    remoteAddress: host.ip!,
  });
  const token = /\/boot\/ks\/([A-Za-z0-9_-]+)/.exec(boot.body)?.[1];
  assert.ok(token, boot.body);
  const ks = await app.inject({ method: 'GET', url: `/boot/ks/${token}`, headers: { host: new URL(base).host } });
  assert.equal(ks.statusCode, 200);
  const post = /^%post[^\n]*\n([\s\S]*?)^%end$/m.exec(ks.body)?.[1];
  assert.ok(post, 'the Kickstart has a %post');
  // Everything but enabling libvirtd, which is the installed system's business.
  return {
    token,
    script: post
      .split('\n')
      .filter((line) => !/^(systemctl|chkconfig) /.test(line))
      .join('\n'),
  };
}

function runShell(script: string): { stdout: string[]; stderr: string[]; exit: Promise<number | null> } {
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: [] as string[], stderr: [] as string[] };
  child.stdout.on('data', (d: Buffer) => out.stdout.push(d.toString()));
  child.stderr.on('data', (d: Buffer) => out.stderr.push(d.toString()));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { ...out, exit };
}

test(
  'the %post callback outlasts a refused connection and a 503, and the host ends built',
  { timeout: 60_000 },
  async () => {
    const port = await freePort();
    const { script } = await renderedCallback(`http://127.0.0.1:${port}`);
    const shell = runShell(script);
    const started = Date.now();
    try {
      // Nothing listens yet: curl's first attempt is refused.
      while (!shell.stderr.join('').match(/Connection refused|Couldn't connect|Failed to connect/i)) {
        assert.ok(Date.now() - started < 10_000, `no refused attempt seen: ${shell.stderr.join('')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const answered: number[] = [];
      const front = createServer((request, response) => {
        void (async () => {
          if (answered.length === 0) {
            answered.push(503);
            response.writeHead(503).end('store unavailable\n');
            return;
          }
          const r = await app.inject({
            method: request.method as 'POST',
            url: request.url!,
            headers: { host: 'boot.test:8081' },
          });
          answered.push(r.statusCode);
          response.writeHead(r.statusCode).end(r.body);
        })();
      });
      front.listen(port, '127.0.0.1');
      await once(front, 'listening');
      try {
        let timer: NodeJS.Timeout | undefined;
        const code = await Promise.race([
          shell.exit,
          new Promise<'slow'>((r) => (timer = setTimeout(() => r('slow'), 40_000))),
        ]);
        clearTimeout(timer);
        assert.equal(code, 0, `the callback loop ended: ${shell.stdout.join('')} ${shell.stderr.join('')}`);
      } finally {
        front.close();
      }
      assert.deepEqual(answered, [503, 200]);
      assert.match(shell.stdout.join(''), /kvmfleet: build reported/);
      assert.equal((await getHost(store.db, host.hostname)).buildState, 'built');
    } finally {
      await Promise.race([shell.exit, new Promise((r) => setTimeout(r, 100).unref())]);
    }
  },
);

test('a 4xx (the token is no longer current) ends the callback at once', { timeout: 30_000 }, async () => {
  await store.db.updateTable('hosts').set({ build_state: 'ready', build_token: null }).where('id', '>', 0).execute();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const { token, script } = await renderedCallback(`http://127.0.0.1:${port}`);
  await store.db.updateTable('hosts').set({ build_state: 'ready', build_token: null }).where('id', '>', 0).execute(); // a rebuild: the token is dead
  const started = Date.now();
  const shell = runShell(script);
  assert.equal(await shell.exit, 0);
  assert.ok(Date.now() - started < 5000, 'no retries after a 4xx');
  assert.match(shell.stdout.join(''), /refused \(HTTP 403\)/);
  assert.ok(token);
});
