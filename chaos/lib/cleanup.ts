/**
 * What a chaos run must undo on every exit path: each scenario registers the undo of what it
 * starts (servers, namespaces, PostgreSQL clusters, mounts) as it starts it, and runs them itself
 * in reverse when it ends. Ctrl-C (SIGINT) or SIGTERM runs whatever is still registered, then exits;
 * test/helpers/netns.ts also removes its namespaces at process exit.
 */
export type Undo = () => Promise<void> | void;

const pending: { label: string; undo: Undo }[] = [];

/** Registers an undo; returns a function that runs it now (once) and forgets it. */
export function onCleanup(label: string, undo: Undo): () => Promise<void> {
  const entry = { label, undo };
  pending.push(entry);
  return async () => {
    const at = pending.indexOf(entry);
    if (at < 0) return;
    pending.splice(at, 1);
    await entry.undo();
  };
}

/** Runs every registered undo, newest first; a failing one is reported and the rest still run. */
export async function cleanupAll(): Promise<void> {
  while (pending.length) {
    const entry = pending.pop()!;
    try {
      await entry.undo();
    } catch (error) {
      console.error(`chaos: cleanup of ${entry.label} failed: ${(error as Error).message}`);
    }
  }
}

/** A scope for one scenario: everything registered through it is undone when it ends. */
export async function withCleanup<T>(
  body: (defer: (label: string, undo: Undo) => () => Promise<void>) => Promise<T>,
): Promise<T> {
  const mine: (() => Promise<void>)[] = [];
  try {
    return await body((label, undo) => {
      const run = onCleanup(label, undo);
      mine.push(run);
      return run;
    });
  } finally {
    for (const run of mine.reverse()) {
      try {
        await run();
      } catch (error) {
        console.error(`chaos: cleanup failed: ${(error as Error).message}`);
      }
    }
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`chaos: ${signal}: cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

/** CHAOS_TRACE=1: each step of a scenario on stderr, with the time. */
export function trace(message: string): void {
  if (process.env.CHAOS_TRACE === '1') process.stderr.write(`${new Date().toISOString()} chaos: ${message}\n`);
}
