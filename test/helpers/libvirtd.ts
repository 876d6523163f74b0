/**
 * A real libvirt daemon for the tests: the machine's own when its socket answers, otherwise one
 * started here (libvirtd in the foreground) and stopped at the end. A missing libvirtd fails loudly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';

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
  if (!existsSync('/usr/sbin/libvirtd')) throw new Error('libvirtd is not installed (apt-get install libvirt-daemon-system)');
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
