/**
 * Whether KVM really runs guests on a hypervisor. Capabilities list kvm whenever /dev/kvm exists,
 * and on some hosts a KVM guest even *starts* but its vCPU never gets anywhere (nested,
 * paravirtualised KVM: the host logs "kvm-pvm: INTERNAL_ERROR"), so a start proves nothing. The
 * probe boots a tiny guest (kvm-probe/boot-sector.S) from a volume in the hypervisor's pool; the
 * guest enters 64-bit mode, writes 64 MiB and runs 2^25 rounds of xorshift32 from a seed the host
 * chose, then writes a marker. The host reads that back through libvirt (virDomainMemoryPeek),
 * so a remote hypervisor is probed exactly like a local one. kvm is chosen only when the KVM guest
 * finished within a bounded time and no slower than the same guest under TCG; otherwise qemu, with
 * what the probe saw as the reason.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { MemoryPeekFlags, type LibvirtClient } from '../protocols/libvirt/remote.ts';
import type { RemoteDomain, RemoteStorageVolume } from '../protocols/libvirt/types.ts';
import { escapeXml } from './domain-xml.ts';
import type { DomainType } from './domain-type.ts';

/** kvm-probe/boot-sector.S, assembled (a test checks these bytes against the source). */
export const PROBE_BOOT_SECTOR: Buffer = Buffer.from(
  '+jHAjtiOwI7QvAB8vwAQuQAY86tmxwYAEAMgAABmxwYAIAMwAABmvwAwAABmuIMAAAC5AAJnZokHZgUAACAAZoPHCOLwZrgAEAAADyLYDyDgZoPIIA8i4Ga5gAAAwA8yZg0AAQAADzBmDwEWEH0PIMBmDQEAAIAPIsBm6oJ8AAAIAGa4EACO2I7AjtCLBCUYfQAAiQQlDJAAAEjHxwAAEACJB0iBxwAQAABIgf8AABAEcu6JPCUQkAAAuQAAAAKJwsHiDTHQicLB6hEx0InCweIFMdD/yXXniQQlCJAAAEi4S1ZNRkxFRVRIiQQlAJAAAPTr/Q8fQAAAAAAAAAAAAAAAAAAAmiAAAAAAAACSAAAXAPh8AABmkAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAVao=',
  'base64',
);
/** Where the seed goes in the boot sector (the `seed` label). */
export const PROBE_SEED_OFFSET = 0x118;
export const PROBE_ROUNDS = 2 ** 25;
const RESULT_ADDRESS = 0x9000n;
const MAGIC = Buffer.from('KVMFLEET', 'latin1');
const PHASE_ONE_DONE = 0x04100000;
/** The guest writes 64 MiB above 1 MiB: it needs a little more memory than that. */
const PROBE_MEMORY_MIB = 128;

export function probeBootSector(seed: number): Buffer {
  const sector = Buffer.from(PROBE_BOOT_SECTOR);
  sector.writeUInt32LE(seed >>> 0, PROBE_SEED_OFFSET);
  return sector;
}

/** What the guest computes: xorshift32 (13, 17, 5), `rounds` times from `seed`. */
export function xorshift32(seed: number, rounds: number): number {
  let x = seed >>> 0;
  for (let i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

/** How far the guest got, read from the 20 bytes at RESULT_ADDRESS. */
export type GuestProgress = 'nothing' | 'memory-written' | 'finished' | 'wrong-result';

export function readGuestProgress(memory: Buffer, seed: number, expected: number): GuestProgress {
  if (memory.length < 20) return 'nothing';
  if (memory.subarray(0, 8).equals(MAGIC)) {
    return memory.readUInt32LE(8) === expected && memory.readUInt32LE(12) === seed >>> 0 ? 'finished' : 'wrong-result';
  }
  return memory.readUInt32LE(16) === PHASE_ONE_DONE ? 'memory-written' : 'nothing';
}

/** One probe guest's run, as seen from the host. */
export type GuestRun =
  | { readonly outcome: 'refused'; readonly message: string }
  | { readonly outcome: 'finished'; readonly ms: number }
  | { readonly outcome: 'stalled'; readonly waitedMs: number; readonly progress: GuestProgress; readonly state: string }
  | { readonly outcome: 'unprovable'; readonly message: string };

/** Everything the probe saw on one hypervisor; decideDomainType turns it into a choice. */
export interface ProbeObservation {
  readonly capabilities: readonly DomainType[];
  /** Absent when the capabilities offer no kvm. */
  readonly kvm?: GuestRun;
  /** The same guest under TCG, for comparison (absent when KVM did not finish). */
  readonly tcg?: GuestRun;
}

export interface ProbeVerdict {
  readonly domainType: DomainType;
  /** What the probe saw, for operators (hypervisor show, the API). */
  readonly reason: string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The choice, from the observation alone (pure: unit-tested with each possible observation). */
export function decideDomainType(observation: ProbeObservation): ProbeVerdict {
  const { kvm, tcg } = observation;
  if (!observation.capabilities.includes('kvm') || !kvm)
    return { domainType: 'qemu', reason: 'libvirt offers no kvm domain type for x86_64 here (no /dev/kvm): TCG' };
  switch (kvm.outcome) {
    case 'refused':
      return {
        domainType: 'qemu',
        reason: `a KVM guest could not start: ${kvm.message.split('\n').slice(0, 2).join(' ').slice(0, 300)}`,
      };
    case 'unprovable':
      return {
        domainType: 'qemu',
        reason: `KVM could not be proven (${kvm.message.slice(0, 300)}): TCG until a probe succeeds`,
      };
    case 'stalled': {
      const saw =
        kvm.progress === 'nothing'
          ? 'ran no code that the host could see'
          : kvm.progress === 'memory-written'
            ? 'wrote its memory but did not finish its computation'
            : 'computed a wrong result';
      return {
        domainType: 'qemu',
        reason: `a KVM guest started (state ${kvm.state}) and ${saw} in ${seconds(kvm.waitedMs)}: KVM only pretends here, TCG`,
      };
    }
    case 'finished':
      if (tcg?.outcome === 'finished' && tcg.ms < kvm.ms) {
        return {
          domainType: 'qemu',
          reason: `the KVM guest finished the probe in ${seconds(kvm.ms)}, slower than under TCG (${seconds(tcg.ms)}): TCG`,
        };
      }
      return {
        domainType: 'kvm',
        reason: `a KVM guest ran the probe in ${seconds(kvm.ms)}${tcg?.outcome === 'finished' ? ` (TCG: ${seconds(tcg.ms)})` : ''}`,
      };
  }
}

export interface ProbeOptions {
  /** The storage pool that holds the probe's boot disk for the time of the probe. */
  readonly storagePool: string;
  /** How long a KVM guest gets to finish (TCG does the work in ~1 s on a 2-core machine). */
  readonly kvmTimeoutMs?: number;
  readonly tcgTimeoutMs?: number;
  readonly pollMs?: number;
}

function probeDomainXml(type: DomainType, name: string, diskPath: string): string {
  return [
    `<domain type='${type}'>`,
    `<name>${escapeXml(name)}</name><memory unit='MiB'>${PROBE_MEMORY_MIB}</memory><vcpu>1</vcpu>`,
    // The CPU that kvmfleet gives its KVM guests (domain-xml.ts), so the probe runs what they will.
    type === 'kvm' ? "<cpu mode='host-passthrough'/>" : '',
    "<os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>",
    '<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>',
    `<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${escapeXml(diskPath)}'/><target dev='vda' bus='virtio'/></disk><serial type='null'/></devices>`,
    '</domain>',
  ].join('');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const stateOf = (client: LibvirtClient, dom: RemoteDomain) =>
  client.getDomainState(dom).then(
    (s): string => s.state,
    () => 'gone',
  );

/** Boots the probe guest as `type` from the disk at `diskPath` and watches its memory until it finishes or `timeoutMs` passes. */
export async function runProbeGuest(
  client: LibvirtClient,
  type: DomainType,
  diskPath: string,
  seed: number,
  timeoutMs: number,
  pollMs = 100,
): Promise<GuestRun> {
  const expected = xorshift32(seed, PROBE_ROUNDS);
  const name = `kvmfleet-probe-${type}-${randomUUID().slice(0, 8)}`;
  let dom: RemoteDomain;
  const startedAt = Date.now();
  try {
    dom = await client.createTransientDomain(probeDomainXml(type, name, diskPath));
  } catch (error) {
    return { outcome: 'refused', message: (error as Error).message };
  }
  try {
    let progress: GuestProgress = 'nothing';
    let state = 'running';
    for (;;) {
      const elapsed = Date.now() - startedAt;
      try {
        progress = readGuestProgress(
          await client.peekDomainMemory(dom, RESULT_ADDRESS, 20, MemoryPeekFlags.Physical),
          seed,
          expected,
        );
      } catch (error) {
        // The domain went away (it crashed, or QEMU died) or the driver cannot peek.
        state = await stateOf(client, dom);
        if (state === 'running' || state === 'paused')
          return {
            outcome: 'unprovable',
            message: `reading the probe guest's memory failed: ${(error as Error).message}`,
          };
        return { outcome: 'stalled', waitedMs: elapsed, progress, state };
      }
      if (progress === 'finished') return { outcome: 'finished', ms: elapsed };
      if (progress === 'wrong-result' || elapsed >= timeoutMs) {
        state = await stateOf(client, dom);
        return { outcome: 'stalled', waitedMs: elapsed, progress, state };
      }
      await sleep(pollMs);
    }
  } finally {
    await client.destroyDomain(dom).catch(() => undefined);
  }
}

/** The probe's boot disk: a 1 MiB raw volume (SeaBIOS wants more than one sector) holding the boot sector. */
async function withProbeDisk<T>(
  client: LibvirtClient,
  storagePool: string,
  seed: number,
  use: (path: string) => Promise<T>,
): Promise<T> {
  const pool = await client.lookupStoragePool(storagePool);
  const name = `kvmfleet-kvm-probe-${randomUUID().slice(0, 8)}.img`;
  const volume: RemoteStorageVolume = await client.createVolume(
    pool,
    `<volume><name>${escapeXml(name)}</name><capacity unit='bytes'>1048576</capacity><target><format type='raw'/></target></volume>`,
  );
  try {
    await client.uploadVolume(volume, probeBootSector(seed));
    return await use(await client.getVolumePath(volume));
  } finally {
    await client.deleteVolume(volume).catch(() => undefined);
  }
}

/** Observes KVM (and TCG, for comparison, when KVM finished) on the hypervisor behind `client`. */
export async function observeKvm(
  client: LibvirtClient,
  capabilities: readonly DomainType[],
  options: ProbeOptions,
): Promise<ProbeObservation> {
  if (!capabilities.includes('kvm')) return { capabilities };
  const seed = randomInt(1, 2 ** 32 - 1);
  try {
    return await withProbeDisk(client, options.storagePool, seed, async (path) => {
      const kvm = await runProbeGuest(client, 'kvm', path, seed, options.kvmTimeoutMs ?? 10_000, options.pollMs);
      if (kvm.outcome !== 'finished') return { capabilities, kvm };
      const tcg = await runProbeGuest(client, 'qemu', path, seed, options.tcgTimeoutMs ?? 60_000, options.pollMs);
      return { capabilities, kvm, tcg };
    });
  } catch (error) {
    return {
      capabilities,
      kvm: {
        outcome: 'unprovable',
        message: `no probe disk in storage pool "${options.storagePool}": ${(error as Error).message}`,
      },
    };
  }
}
