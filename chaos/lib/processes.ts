/** Process trees by pid, from /proc: to kill exactly what a process we started has started, and nothing else. */
import { readdirSync, readFileSync } from 'node:fs';

function parentOf(pid: number): number | undefined {
  try {
    // The name in parentheses may hold spaces: the parent is the second field after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Every descendant of `root` now (children first found, then theirs). */
export function descendants(root: number): number[] {
  if (!Number.isInteger(root) || root <= 1) throw new RangeError(`no process tree under pid ${root}`);
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const parent = parentOf(pid);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) for (const child of children.get(queue.shift()!) ?? []) (found.push(child), queue.push(child));
  return found;
}

export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** This process and its ancestors: never to be killed by a tree walk gone wrong. */
function ourselves(): Set<number> {
  const mine = new Set<number>([process.pid]);
  for (let pid: number | undefined = process.ppid; pid !== undefined && pid > 1; pid = parentOf(pid)) mine.add(pid);
  return mine;
}

/** SIGKILLs each pid (gone ones are skipped); never pid 0 or 1 (a group, init), this process or its ancestors. */
export function killAll(pids: readonly number[]): void {
  const spared = ourselves();
  for (const pid of pids) {
    if (!Number.isInteger(pid) || pid <= 1 || spared.has(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
