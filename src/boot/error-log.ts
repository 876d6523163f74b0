/**
 * Errors of the UDP roles (socket errors, store errors while answering) on stderr, with their
 * cause chain — at most `perSecond` lines a second, so a flood of bad packets cannot flood the log;
 * how many were left out is said on the next line that is printed.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const e = current as { message?: unknown; code?: unknown; cause?: unknown };
    parts.push(
      typeof e.message === 'string'
        ? `${e.message}${typeof e.code === 'string' ? ` (${e.code})` : ''}`
        : String(current),
    );
    current = e.cause;
  }
  return parts.join(': caused by: ');
}

export function rateLimitedErrorLog(
  label: string,
  perSecond = 20,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): (error: unknown) => void {
  let second = 0;
  let printed = 0;
  let skipped = 0;
  return (error) => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) {
      second = now;
      printed = 0;
    }
    if (printed >= perSecond) {
      skipped += 1;
      return;
    }
    printed += 1;
    write(`${label} error: ${describeError(error)}${skipped ? ` (${skipped} similar lines left out)` : ''}`);
    skipped = 0;
  };
}
