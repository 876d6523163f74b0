/**
 * A piece of store upkeep run every so often (build deadlines, retention): one run at a time — the
 * next is scheduled only after the last ended, so a slow store never piles runs up — and a failed
 * run (store unreachable) is reported and tried again at the next tick, never thrown.
 */
export interface Periodic {
  /** Runs the work now (after any run in progress) and resolves when it ended. */
  runNow(): Promise<void>;
  /** No more runs; resolves once the one in progress (if any) ended. */
  stop(): Promise<void>;
}

/**
 * The first run comes after `firstAfterMs` (default: one interval), so that upkeep with a long
 * interval still runs on a node that restarts more often than that interval.
 */
export function startPeriodic(
  intervalMs: number,
  work: () => Promise<unknown>,
  onError: (error: unknown) => void,
  firstAfterMs = intervalMs,
): Periodic {
  if (!(intervalMs > 0)) throw new RangeError(`a periodic interval must be positive, not ${intervalMs}`);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const run = (): Promise<void> => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        await work();
      } catch (error) {
        onError(error);
      }
    });
    return running;
  };
  const schedule = (delayMs = intervalMs) => {
    if (stopped) return;
    timer = setTimeout(() => void run().then(() => schedule()), delayMs);
    timer.unref(); // upkeep never keeps the process alive on its own
  };
  schedule(Math.min(firstAfterMs, intervalMs));
  return {
    runNow: run,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
