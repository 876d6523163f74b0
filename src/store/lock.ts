/**
 * A lock file in the data directory so that only one process opens the embedded store.
 * A lock left by a dead process (SIGKILL, power loss) is taken over: its PID no longer runs.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, KvmfleetError } from '../errors.ts';

export interface DataDirLock {
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireDataDirLock(dataDir: string): DataDirLock {
  const path = join(dataDir, 'kvmfleet.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return {
        release() {
          try {
            unlinkSync(path);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new KvmfleetError(ErrorCode.StoreLocked, `the store in ${dataDir} is in use by process ${holder}`);
      }
      unlinkSync(path); // stale: its owner is gone
    }
  }
  throw new KvmfleetError(ErrorCode.StoreLocked, `could not lock the store in ${dataDir}`);
}
