/**
 * TFTP boot storm: N concurrent clients fetch ipxe.efi from the server in a namespace;
 * kvmfleet and tftpd-hpa serve the same file from the same root, one after the other.
 * Without windowsize the clients are curl (lock-step, 512-byte blocks, a 1 s retransmission timeout
 * negotiated through --connect-timeout 30, close to what PXE firmware uses); with windowsize they are
 * atftp asking for windowsize 16 (tftpd-hpa does not implement RFC 7440 and falls back to lock-step).
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createNamespacePair, type NamespacePair } from '../test/helpers/netns.ts';
import { startServer } from '../test/helpers/server.ts';

export type TftpPeer = 'kvmfleet' | 'tftpd-hpa';
export interface StormResult {
  seconds: number;
  failures: number;
}

async function startPeer(peer: TftpPeer, net: NamespacePair, root: string): Promise<() => Promise<void>> {
  if (peer === 'kvmfleet') {
    const server = await startServer(
      [
        '--roles',
        'tftp',
        '--data-dir',
        'memory://',
        '--tftp-root',
        root,
        '--tftp-listen',
        `${net.server.ip}:69`,
        '--log-level',
        'warn',
      ],
      {},
      60_000,
      { netns: net.server.name },
    );
    return () => server.kill();
  }
  const child: ChildProcess = net.server.spawn('/usr/sbin/in.tftpd', ['-L', '-s', root, '-a', `${net.server.ip}:69`], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error('in.tftpd did not start');
  return async () => {
    child.kill();
    await once(child, 'exit');
  };
}

export async function tftpStorm(peer: TftpPeer, clients: number, windowed: boolean): Promise<StormResult> {
  const work = mkdtempSync(join(tmpdir(), 'kvb-tftp-'));
  const root = join(work, 'root');
  const out = join(work, 'out');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(root);
  mkdirSync(out);
  copyFileSync('/usr/lib/ipxe/ipxe.efi', join(root, 'ipxe.efi'));
  const net = await createNamespacePair('bench');
  const stop = await startPeer(peer, net, root);
  try {
    const fetch = windowed
      ? `atftp --option "blksize 1428" --option "windowsize 16" -g -r ipxe.efi -l ${out}/f-$i ${net.server.ip} 69 >/dev/null 2>&1`
      : `curl -sS --fail --connect-timeout 30 --max-time 90 -o ${out}/f-$i tftp://${net.server.ip}/ipxe.efi 2>/dev/null`;
    const script = `
      start=$(date +%s.%N); fails=0
      for i in $(seq 1 ${clients}); do ${fetch} & done
      for job in $(jobs -p); do wait $job || fails=$((fails+1)); done
      end=$(date +%s.%N)
      good=$(sha256sum ${out}/f-* 2>/dev/null | awk '{print $1}' | grep -c "$(sha256sum /usr/lib/ipxe/ipxe.efi | awk '{print $1}')")
      echo "$start $end $fails $good"`;
    const { stdout } = await net.client.exec('bash', ['-c', script], { timeoutMs: 600_000 });
    const [start, end, fails, good] = stdout.trim().split(/\s+/).map(Number);
    return { seconds: end! - start!, failures: Math.max(fails!, clients - good!) };
  } finally {
    await stop();
    await net.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
