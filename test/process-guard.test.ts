/**
 * The last-resort handler in a real child process: an unhandled socket error (a peer resetting a
 * connection nobody listened to) is logged and the process goes on serving; a bug exits with 1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

const child = (body: string) => {
  const script = `
    import { installProcessGuard } from './src/process-guard.ts';
    import { createServer } from 'node:http';
    import { EventEmitter } from 'node:events';
    installProcessGuard();
    const server = createServer((_q, r) => r.end('still here')).listen(0, '127.0.0.1', () => console.log('port', server.address().port));
    ${body}
  `;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  return { proc, out: () => out, err: () => err };
};

const waitFor = async (read: () => string, pattern: RegExp, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!pattern.test(read())) {
    assert.ok(Date.now() < deadline, `no ${pattern} in: ${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return pattern.exec(read())!;
};

test('an unhandled connection error is logged and the process goes on serving', { timeout: 30_000 }, async () => {
  const c =
    child(`setTimeout(() => { const e = new EventEmitter(); e.emit('error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })); }, 100);
    setTimeout(() => Promise.reject(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })), 150);`);
  try {
    const port = Number((await waitFor(c.out, /port (\d+)/))[1]);
    await waitFor(c.err, /write EPIPE/);
    assert.match(c.err(), /"level":"warn".*read ECONNRESET/);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'still here');
    assert.equal(c.proc.exitCode, null);
  } finally {
    c.proc.kill('SIGKILL');
  }
});

test(
  'any other unhandled error is logged and the process exits 1 (its supervisor restarts it)',
  { timeout: 30_000 },
  async () => {
    const c = child(`setTimeout(() => { null.boom(); }, 100);`);
    const [code] = await once(c.proc, 'exit');
    assert.equal(code, 1);
    assert.match(c.err(), /"level":"fatal".*Cannot read properties of null/);
  },
);
