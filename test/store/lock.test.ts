/**
 * The embedded store's lock: of several processes that start on one data directory at the same
 * moment exactly one gets it (a stale PID file let two take it over at once); a holder that is
 * SIGKILLed frees it at once, with nothing to clean up.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { acquireDataDirLock } from '../../src/store/lock.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvt-lock-'));
});
after(async () => rm(dir, { recursive: true, force: true }));

/** A process that tries the lock, prints what it got, and holds it until killed (or exits when refused). */
function contender() {
  const script = `import { acquireDataDirLock } from './src/store/lock.ts';
    acquireDataDirLock(${JSON.stringify(dir)}).then(() => { console.log('got'); setInterval(() => {}, 1000); }, (e) => { console.log('refused', e.message); process.exit(0); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const answer = new Promise<string>((resolve) => {
    const check = () => (out.includes('\n') ? resolve(out.trim()) : setTimeout(check, 20));
    check();
  });
  return { child, answer };
}

test(
  'of 6 processes starting at once on one directory, exactly one holds the store; the others are told who',
  { timeout: 60_000 },
  async () => {
    // A PID file of a process long gone: no longer a lock at all.
    await writeFile(join(dir, 'kvmfleet.lock'), '999999\n');
    const contenders = Array.from({ length: 6 }, contender);
    try {
      const answers = await Promise.all(contenders.map((c) => c.answer));
      assert.equal(answers.filter((a) => a === 'got').length, 1, answers.join(' | '));
      const holder = contenders[answers.indexOf('got')]!.child.pid;
      for (const a of answers.filter((x) => x !== 'got')) assert.match(a, new RegExp(`in use by process ${holder}`));
      // The holder is killed: the lock is free at once.
      const winner = contenders[answers.indexOf('got')]!.child;
      winner.kill('SIGKILL');
      await once(winner, 'exit');
      const deadline = Date.now() + 5_000;
      for (;;) {
        try {
          const lock = await acquireDataDirLock(dir);
          await lock.release();
          break;
        } catch (error) {
          assert.ok(Date.now() < deadline, `not freed after SIGKILL: ${(error as Error).message}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      for (const c of contenders) c.child.kill('SIGKILL');
    }
  },
);

test('in one process: a second open is refused while the first holds it, and allowed after release', async () => {
  const first = await acquireDataDirLock(dir);
  await assert.rejects(acquireDataDirLock(dir), new RegExp(`in use by process ${process.pid}`));
  await first.release();
  await (await acquireDataDirLock(dir)).release();
});
