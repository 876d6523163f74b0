/**
 * TFTP boot storm: N concurrent clients fetch ipxe.efi from the server in a namespace;
 * kvmfleet and tftpd-hpa serve the same file from the same root, one after the other.
 * Without windowsize the clients are curl (lock-step, 512-byte blocks, a 1 s retransmission timeout
 * negotiated through --connect-timeout 30, close to what PXE firmware uses); with windowsize they are
 * atftp asking for windowsize 16 (tftpd-hpa does not implement RFC 7440 and falls back to lock-step).
 * The clients come from 25 addresses (20 each at 500, as 500 machines would, under kvmfleet's per-source
 * limit of 32): atftp cannot bind an address, so each client runs as one of 25 uids and an `ip rule
 * uidrange` per uid routes it through a table whose route to the server names that source address.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  /** CPU the server used during the storm (user + system, its reaped children included), in seconds. */
  serverCpuSeconds: number;
}

/** Source addresses the clients are spread over. */
const SOURCES = 25;
const FIRST_UID = 20_000;

/** CPU seconds of a process and of its reaped children (tftpd-hpa forks one per transfer). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return NaN;
  }
}

interface Peer {
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

async function startPeer(peer: TftpPeer, net: NamespacePair, root: string): Promise<Peer> {
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
    return { pid: server.child.pid, stop: () => server.kill() };
  }
  const child: ChildProcess = net.server.spawn('/usr/sbin/in.tftpd', ['-L', '-s', root, '-a', `${net.server.ip}:69`], {
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error('in.tftpd did not start');
  return {
    pid: child.pid,
    stop: async () => {
      child.kill();
      await once(child, 'exit');
    },
  };
}

export async function tftpStorm(peer: TftpPeer, clients: number, windowed: boolean): Promise<StormResult> {
  const work = mkdtempSync(join(tmpdir(), 'kvb-tftp-'));
  const root = join(work, 'root');
  const out = join(work, 'out');
  chmodSync(work, 0o755); // the clients run as other uids
  mkdirSync(root);
  mkdirSync(out, { mode: 0o1777 });
  chmodSync(out, 0o1777);
  copyFileSync('/usr/lib/ipxe/ipxe.efi', join(root, 'ipxe.efi'));
  const net = await createNamespacePair('bench');
  for (let k = 0; k < SOURCES; k++) {
    const address = `${net.subnet}.${100 + k}`;
    await net.client.exec('ip', ['addr', 'add', `${address}/24`, 'dev', net.client.device]);
    await net.client.exec('ip', [
      'route',
      'add',
      net.server.ip,
      'dev',
      net.client.device,
      'src',
      address,
      'table',
      `${100 + k}`,
    ]);
    await net.client.exec('ip', [
      'rule',
      'add',
      'uidrange',
      `${FIRST_UID + k}-${FIRST_UID + k}`,
      'lookup',
      `${100 + k}`,
    ]);
  }
  const server = await startPeer(peer, net, root);
  try {
    const uid = `$((${FIRST_UID} + i % ${SOURCES}))`;
    const as = `setpriv --reuid ${uid} --regid ${uid} --clear-groups`;
    const fetch = windowed
      ? `${as} atftp --option "blksize 1428" --option "windowsize 16" -g -r ipxe.efi -l ${out}/f-$i ${net.server.ip} 69 >/dev/null 2>&1`
      : `${as} curl -sS --fail --connect-timeout 30 --max-time 90 -o ${out}/f-$i tftp://${net.server.ip}/ipxe.efi 2>/dev/null`;
    const script = `
      start=$(date +%s.%N); fails=0
      for i in $(seq 1 ${clients}); do ${fetch} & done
      for job in $(jobs -p); do wait $job || fails=$((fails+1)); done
      end=$(date +%s.%N)
      good=$(sha256sum ${out}/f-* 2>/dev/null | awk '{print $1}' | grep -c "$(sha256sum /usr/lib/ipxe/ipxe.efi | awk '{print $1}')")
      echo "$start $end $fails $good"`;
    const cpuBefore = cpuSeconds(server.pid);
    const { stdout } = await net.client.exec('bash', ['-c', script], { timeoutMs: 600_000 });
    const serverCpuSeconds = cpuSeconds(server.pid) - cpuBefore;
    // tftpd-hpa's children are not all reaped by then: its figure would mean nothing.
    if (peer === 'kvmfleet')
      console.error(
        `bench: tftp ${windowed ? 'windowsize 16' : 'lock-step'} kvmfleet: server CPU ${serverCpuSeconds.toFixed(1)} s`,
      );
    const [start, end, fails, good] = stdout.trim().split(/\s+/).map(Number);
    return { seconds: end! - start!, failures: Math.max(fails!, clients - good!), serverCpuSeconds };
  } finally {
    await server.stop();
    await net.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
