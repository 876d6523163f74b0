/**
 * Only one process opens an embedded store: PGlite has no inter-process locking, and two
 * processes on one directory would corrupt it. The lock is the kernel's (flock(2) on
 * `kvmfleet.lock`), held by a small `flock` child process for as long as this process lives: the
 * kernel releases it when the holder dies, however it dies (SIGKILL, power loss), so there is no
 * stale lock to take over — and so no race between two processes taking over the same stale lock,
 * which a PID in a file allowed. `kvmfleet.pid` says who holds it, for the error message.
 * (Node has no flock of its own; util-linux's flock is on every Debian machine.)
 */
import { spawn } from 'node:child_process';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, KvmfleetError } from '../errors.ts';

export interface DataDirLock {
  /** Frees the lock; resolves once the kernel has released it. */
  release(): Promise<void>;
}

/** flock's exit status when the lock is held by someone else (--conflict-exit-code). */
const HELD = 75;

/** The holder's PID: it writes it right after it took the lock, so a process that lost a race may wait a moment for it. */
async function holderOf(pidPath: string): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const pid = readFileSync(pidPath, 'utf8').trim();
      if (pid) return pid;
    } catch {
      /* not written yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return '(unknown)';
}

export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const lockPath = join(dataDir, 'kvmfleet.lock');
  const pidPath = join(dataDir, 'kvmfleet.pid');
  // The child takes the lock, says so, then waits on its stdin: when this process goes away, its
  // end of the pipe closes, cat ends, and with it the lock.
  const child = spawn(
    'flock',
    ['--nonblock', '--conflict-exit-code', String(HELD), lockPath, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const outcome = await new Promise<'locked' | { code: number | null; error?: Error; stderr: string }>((resolve) => {
    let stderr = '';
    child.stdout.once('data', () => resolve('locked'));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.once('error', (error) => resolve({ code: null, error, stderr }));
    child.once('exit', (code) => resolve({ code, stderr }));
  });
  if (outcome !== 'locked') {
    if (outcome.code === HELD) {
      throw new KvmfleetError(
        ErrorCode.StoreLocked,
        `the store in ${dataDir} is in use by process ${await holderOf(pidPath)}`,
      );
    }
    const why = outcome.error
      ? (outcome.error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'flock is not installed (util-linux)'
        : outcome.error.message
      : outcome.stderr.trim() || `flock exited with ${outcome.code}`;
    throw new KvmfleetError(ErrorCode.StoreLocked, `could not lock the store in ${dataDir}: ${why}`);
  }
  writeFileSync(pidPath, `${process.pid}\n`);
  // The holder must not keep this process alive on its own.
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
  (child.stdout as unknown as { unref(): void }).unref();
  (child.stderr as unknown as { unref(): void }).unref();
  child.stdin.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        try {
          unlinkSync(pidPath);
        } catch {
          /* already gone */
        }
        child.ref(); // wait for it now
        child.stdin.end();
        child.kill();
        await exited;
      })();
      return released;
    },
  };
}
