/**
 * A real libvirt daemon for the tests: the machine's own when its socket answers, otherwise one
 * started here (libvirtd in the foreground) and stopped at the end. A missing libvirtd fails loudly.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { freePort, waitForPort } from './sshd.ts';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import { LibvirtClient } from '../../src/protocols/libvirt/remote.ts';

const run = promisify(execFile);

export const LIBVIRT_SOCKET = '/var/run/libvirt/libvirt-sock';

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

export async function ensureLibvirtd(): Promise<{ stop(): Promise<void> }> {
  if (await answers(LIBVIRT_SOCKET)) return { stop: async () => {} };
  if (!existsSync('/usr/sbin/libvirtd'))
    throw new Error('libvirtd is not installed (apt-get install libvirt-daemon-system)');
  // The qemu driver logs through virtlogd; without it no guest starts.
  const logd: ChildProcess = spawn('/usr/sbin/virtlogd', [], { stdio: 'ignore' });
  const child: ChildProcess = spawn('/usr/sbin/libvirtd', [], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await answers(LIBVIRT_SOCKET)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await answers(LIBVIRT_SOCKET))) throw new Error('libvirtd did not open its socket');
  return {
    async stop() {
      child.kill();
      logd.kill();
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/**
 * Registers before/after hooks that open a LibvirtClient on `uri` through the daemon (started if
 * need be) and close it; returns a getter for the client, valid inside tests.
 */
export function useLibvirtClient(uri: string): () => LibvirtClient {
  let daemon: { stop(): Promise<void> } | undefined;
  let client: LibvirtClient | undefined;
  before(async () => {
    daemon = await ensureLibvirtd();
    client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, uri);
  });
  after(async () => {
    await client?.close();
    await daemon?.stop();
  });
  return () => {
    if (!client) throw new Error('libvirt client not open yet');
    return client;
  };
}

/** virsh through the daemon's test driver (test+unix), not an in-process one of its own. */
export async function virshTest(...args: string[]): Promise<string> {
  return (await run('virsh', ['-c', 'test+unix:///default', ...args])).stdout;
}

/** socat forwarding 127.0.0.1:port to the daemon's unix socket: libvirt's protocol over TCP. */
export async function startTcpForwarder(
  port?: number,
): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const p = port ?? (await freePort());
  const child = spawn('socat', [`TCP-LISTEN:${p},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${LIBVIRT_SOCKET}`], {
    stdio: 'ignore',
  });
  await waitForPort(p);
  return {
    port: p,
    child,
    async stop() {
      // socat forks a child per connection: kill those too, as a host going down would.
      await run('pkill', ['-KILL', '-P', String(child.pid)]).catch(() => undefined);
      child.kill('SIGKILL');
      await new Promise((r) =>
        child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
      );
    },
  };
}

/**
 * At process exit (also after a failed test), removes what a test made on the host: libvirt
 * objects by virsh commands (e.g. ['destroy', NAME], ['pool-destroy', POOL]) and network links.
 */
export function cleanUpAtExit(
  virshCommands: readonly (readonly string[])[],
  links: readonly string[] = [],
): () => void {
  const cleanup = () => {
    for (const args of virshCommands) {
      try {
        execFileSync('virsh', ['-c', 'qemu:///system', ...args], { stdio: 'ignore' });
      } catch {
        /* not there */
      }
    }
    for (const link of links) {
      try {
        execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' });
      } catch {
        /* not there */
      }
    }
  };
  process.on('exit', cleanup);
  return cleanup;
}

/** Test clean-up: destroys and undefines every domain on qemu:///system whose name starts with `prefix` (errors ignored). */
export async function removeDomains(prefix: string): Promise<void> {
  const listed = await run('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name']).then(
    (r) => r.stdout,
    () => '',
  );
  for (const name of listed.split('\n').filter((n) => n.startsWith(prefix))) {
    for (const verb of ['destroy', 'undefine'])
      await run('virsh', ['-c', 'qemu:///system', verb, name]).catch(() => undefined);
  }
}

/**
 * A host bridge for test guests' NICs with nothing on it but them: no address, no uplink, no IPv6
 * autoconfiguration. Remove it with `ip link del` (cleanUpAtExit does).
 */
export async function createIsolatedBridge(name: string): Promise<void> {
  await run('ip', ['link', 'add', name, 'type', 'bridge']);
  await run('sysctl', ['-qw', `net.ipv6.conf.${name}.disable_ipv6=1`]);
  await run('ip', ['link', 'set', name, 'up']);
}

/** A transient directory storage pool on qemu:///system (gone when destroyed or libvirtd restarts). */
export async function createDirPool(name: string, dir: string): Promise<void> {
  await run('virsh', ['-c', 'qemu:///system', 'pool-create-as', name, 'dir', '--target', dir]);
}
