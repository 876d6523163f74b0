/** Starts chaos/lib/machines.ts in the lab's client namespace and collects what the machines saw. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Namespace } from '../../test/helpers/netns.ts';
import type { Undo } from './cleanup.ts';
import type { MachineEvent, MachinePlan } from './machines.ts';

export interface MachineRun {
  readonly events: MachineEvent[];
  /** Resolves once the first event matching `test` has been seen (now or later). */
  when(test: (events: readonly MachineEvent[]) => boolean, timeoutMs: number): Promise<void>;
  /** Resolves when every machine is finished (or has reached its deadline). */
  readonly finished: Promise<void>;
  /** MACs with a 2xx callback answer. */
  built(): Set<string>;
  /** (mac, ip) of every ACK the machines received. */
  acks(): { mac: string; ip: string }[];
  /** The most frequent failure reasons, for the report. */
  failures(limit?: number): string;
}

type Defer = (label: string, undo: Undo) => () => Promise<void>;

export function runMachines(defer: Defer, client: Namespace, plan: MachinePlan): MachineRun {
  const dir = mkdtempSync(join(tmpdir(), 'kvmfleet-chaos-plan-'));
  const file = join(dir, 'plan.json');
  const shimDir = join(dir, 'shims');
  mkdirSync(shimDir);
  chmodSync(dir, 0o755);
  for (const name of ['systemctl', 'chkconfig']) {
    writeFileSync(join(shimDir, name), `#!/bin/sh\necho "${name} (chaos shim): skipped: $*"\n`);
    chmodSync(join(shimDir, name), 0o755);
  }
  writeFileSync(file, JSON.stringify({ ...plan, shimDir } satisfies MachinePlan));
  const child = client.spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'machines.ts'), `@${file}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stop = defer('simulated machines', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const events: MachineEvent[] = [];
  const waiters: { test: (e: readonly MachineEvent[]) => boolean; resolve: () => void }[] = [];
  let partial = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line) events.push(JSON.parse(line) as MachineEvent);
    for (const waiter of [...waiters])
      if (waiter.test(events)) (waiters.splice(waiters.indexOf(waiter), 1), waiter.resolve());
  });
  const finished = new Promise<void>((resolve, reject) =>
    child.on('exit', (code, signal) => {
      void stop();
      if (events.some((e) => e.ev === 'done')) resolve();
      else
        reject(
          new Error(`the simulated machines exited (${code ?? signal}) before the end: ${stderr.trim().slice(-500)}`),
        );
    }),
  );
  finished.catch(() => {});
  return {
    events,
    finished,
    when(test, timeoutMs) {
      if (test(events)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the machines did not get there in ${timeoutMs} ms (${summary(events)})`)),
          timeoutMs,
        );
        waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
        void finished.then(
          () => test(events) || reject(new Error(`the machines finished before getting there (${summary(events)})`)),
          reject,
        );
      });
    },
    built: () => new Set(events.flatMap((e) => (e.ev === 'built' && e.status >= 200 && e.status < 300 ? [e.mac] : []))),
    acks: () => events.flatMap((e) => (e.ev === 'ack' ? [{ mac: e.mac, ip: e.ip }] : [])),
    failures(limit = 3) {
      const counts = new Map<string, number>();
      for (const e of events) {
        if (e.ev !== 'fail') continue;
        // Addresses, MACs and tokens differ per machine; the reason is what counts.
        const key = `${e.step}: ${e.error
          .replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, 'A')
          .replace(/[0-9a-f]{2}(:[0-9a-f]{2}){5}/g, 'M')
          .replace(/\/[A-Za-z0-9_-]{20,}/g, '/…')}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return [...counts]
        .sort((a, b) => b[1] - a[1])
        .slice(0, limit)
        .map(([k, n]) => `${n}× ${k}`)
        .join('; ');
    },
  };
}

export function count(events: readonly MachineEvent[], ev: MachineEvent['ev']): number {
  return events.filter((e) => e.ev === ev).length;
}

function summary(events: readonly MachineEvent[]): string {
  return `acks ${count(events, 'ack')}, kickstarts ${count(events, 'kickstart')}, built ${count(events, 'built')}, failures ${count(events, 'fail')}`;
}
