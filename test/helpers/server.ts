/** Runs `kvmfleet serve` as a real child process, as an operator would, and the CLI against it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const KVMFLEET_BIN = fileURLToPath(new URL('../../bin/kvmfleet.js', import.meta.url));

export interface ServerProcess {
  /** The API's URL ('' when the api role is not running). */
  readonly url: string;
  /** The boot HTTP role's URL ('' when it is not running). */
  readonly bootUrl: string;
  readonly child: ChildProcess;
  /** Every line the server printed so far (stdout and stderr). */
  readonly lines: string[];
  /** Resolves with the first line (printed from now on or earlier) that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startServer(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
  options: { netns?: string; cwd?: string } = {},
): Promise<ServerProcess> {
  const command = [
    process.execPath,
    KVMFLEET_BIN,
    'serve',
    '--listen',
    '127.0.0.1:0',
    ...(args.includes('--roles') ? [] : ['--roles', 'api']),
    ...args,
  ];
  // Boot roles run inside a test namespace, as they would on a boot network.
  const [file, ...argv] = options.netns ? ['ip', 'netns', 'exec', options.netns, ...command] : command;
  const child = spawn(file!, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = once(child, 'exit');
  const waitForLine = (pattern: RegExp, ms = timeoutMs) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return resolve(seen);
      const timer = setTimeout(
        () => reject(new Error(`server printed no line matching ${pattern} in ${ms} ms:\n${lines.join('\n')}`)),
        ms,
      );
      waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      void exited.then(() =>
        reject(
          new Error(
            `server exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${lines.join('\n')}`,
          ),
        ),
      );
    });
  const ready = await waitForLine(/serving .*\(store/);
  const url = /\bapi (https?:\/\/[^\s,]+)/.exec(ready)?.[1] ?? '';
  const bootUrl = /\bhttp (http:\/\/[^\s,]+)/.exec(ready)?.[1] ?? '';
  return {
    url,
    bootUrl,
    child,
    lines,
    waitForLine,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      // A server that does not stop within 15 s of SIGTERM is killed: a test never leaves one behind.
      const escalate = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(escalate);
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  url: string,
  args: string[],
  input?: string,
  env: Record<string, string> = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [KVMFLEET_BIN, '--url', url, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}
