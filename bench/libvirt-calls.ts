/**
 * libvirt: lookup + getState through kvmfleet's RPC client (one connection) against spawning
 * `virsh domstate` per call — what scripts around virsh do. Both go to the same libvirtd,
 * test driver (test+unix:///default), domain "test".
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { LibvirtClient } from '../src/protocols/libvirt/remote.ts';
import { ensureLibvirtd, LIBVIRT_SOCKET } from '../test/helpers/libvirtd.ts';

const run = promisify(execFile);

export async function libvirtCalls(clientCalls = 2000, virshCalls = 40): Promise<{ kvmfleet: number; virsh: number }> {
  const daemon = await ensureLibvirtd();
  try {
    const client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, 'test:///default');
    let started = performance.now();
    for (let i = 0; i < clientCalls; i++) await client.getDomainState(await client.lookupDomainByName('test'));
    const kvmfleet = clientCalls / ((performance.now() - started) / 1000);
    await client.close();
    started = performance.now();
    for (let i = 0; i < virshCalls; i++) await run('virsh', ['-c', 'test+unix:///default', 'domstate', 'test']);
    const virsh = virshCalls / ((performance.now() - started) / 1000);
    return { kvmfleet, virsh };
  } finally {
    await daemon.stop();
  }
}
