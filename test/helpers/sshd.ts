/**
 * A real OpenSSH server for the tests, on 127.0.0.1 and a free port, with keys made for the run:
 * a host key (listed in a known_hosts file) and a client key (authorised for root). Stopped by stop().
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Sshd {
  readonly port: number;
  readonly clientKey: string;
  readonly knownHosts: string;
  readonly dir: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(): Promise<Sshd> {
  if (!existsSync('/usr/sbin/sshd')) throw new Error('sshd is not installed (apt-get install openssh-server)');
  const dir = await mkdtemp(join(tmpdir(), 'kvt-sshd-'));
  await chmod(dir, 0o700);
  const key = (name: string) =>
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `kvmfleet-test-${name}`, '-f', join(dir, name)]);
  await key('host_key');
  await key('client_key');
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')));
  await chmod(join(dir, 'authorized_keys'), 0o600);
  const port = await freePort();
  const [type, body] = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ');
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${type} ${body}\n`);
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  await mkdir('/run/sshd', { recursive: true }); // privilege separation directory
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    await waitForPort(port);
  } catch (error) {
    child.kill();
    throw new Error(`sshd did not start: ${(error as Error).message}\n${stderr}`);
  }
  return {
    port,
    clientKey: join(dir, 'client_key'),
    knownHosts: join(dir, 'known_hosts'),
    dir,
    async stop() {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
