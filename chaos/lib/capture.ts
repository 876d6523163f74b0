/** tcpdump of the DHCP traffic on a namespace's link, so "every ACK seen on the wire" is the wire's, not a client's word. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ackedLeases } from '../../test/helpers/pcap.ts';
import type { Namespace } from '../../test/helpers/netns.ts';
import type { Undo } from './cleanup.ts';

type Defer = (label: string, undo: Undo) => () => Promise<void>;

export async function captureDhcp(
  defer: Defer,
  ns: Namespace,
  dir: string,
): Promise<{ stop(): Promise<{ mac: string; ip: string }[]> }> {
  const file = join(dir, 'dhcp.pcap');
  // -U: each packet is written as it is captured (nothing sits in a buffer when the run ends).
  const dump = ns.spawn('tcpdump', ['-i', ns.device, '-w', file, '-U', '-s', '1500', 'udp port 67 or udp port 68'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => dump.once('exit', () => resolve()));
  const stop = defer('tcpdump', async () => {
    if (dump.exitCode === null && dump.signalCode === null) dump.kill('SIGTERM');
    await exited;
  });
  for (let i = 0; i < 50 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300)); // tcpdump opens its file before the filter is attached
  return {
    async stop() {
      await stop();
      return existsSync(file) ? ackedLeases(file) : [];
    },
  };
}
