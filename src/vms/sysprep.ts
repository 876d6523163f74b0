/**
 * Sealing a template's disk with virt-sysprep (libguestfs-tools): it removes what makes a machine
 * one machine (SSH host keys, machine-id, logs, net rules, …) so clones start clean. It runs where
 * the disk is: on this machine for a local hypervisor, over SSH on a remote one. Without working
 * KVM proven by the probe (kvm-probe.ts), libguestfs' appliance runs under TCG (force_tcg), as
 * kvmfleet's guests do: an appliance started on a KVM that only pretends hangs.
 */
import { spawn } from 'node:child_process';
import { sshTargetOf } from '../protocols/libvirt/transport.ts';
import type { LibvirtUri } from '../protocols/libvirt/uri.ts';
import { connectSsh, shellQuote } from '../protocols/ssh/connect.ts';

export interface SysprepResult {
  /** The operations virt-sysprep reports performing, in order (e.g. "machine-id", "ssh-hostkeys"). */
  readonly operations: string[];
  readonly output: string;
}

export function parseSysprepOperations(output: string): string[] {
  return [...output.matchAll(/Performing "([^"]+)"/g)].map((m) => m[1]!);
}

/** libguestfs' messages when its appliance could not use KVM. */
export function isGuestfsKvmFailure(output: string): boolean {
  return /kvm_buf_set_msrs|failed to initialize kvm|Could not access KVM kernel module|KVM: (?:disabled|unavailable)/i.test(
    output,
  );
}

/** virt-sysprep of a small template takes ~30 s under TCG; a hung appliance must not hold the job forever. */
export const SYSPREP_TIMEOUT_MS = 15 * 60_000;

/**
 * Runs virt-sysprep in a process group of its own, so that a timeout (or the caller's abort) ends
 * libguestfs' appliance (a QEMU child of virt-sysprep) too: killing virt-sysprep alone leaves it running.
 */
/** Process groups of running seals: ended with this process, so that a stopped kvmfleet leaves no appliance behind. */
const runningGroups = new Set<number>();
process.on('exit', () => runningGroups.forEach(killGroup));

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function runLocal(args: string[], tcg: boolean, timeoutMs = SYSPREP_TIMEOUT_MS): Promise<string> {
  const env = {
    ...process.env,
    LIBGUESTFS_BACKEND: 'direct',
    ...(tcg ? { LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } : {}),
  };
  return new Promise((resolve, reject) => {
    const child = spawn('virt-sysprep', args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) runningGroups.add(child.pid);
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (chunk: Buffer) => {
      // The last 16 MiB at most: the operations list and the error are at the end.
      chunks.push(chunk);
      size += chunk.length;
      while (size > 16 * 1024 * 1024 && chunks.length > 1) size -= chunks.shift()!.length;
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const killChildGroup = () => child.pid && killGroup(child.pid);
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), killChildGroup()), timeoutMs);
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === 'ENOENT'
          ? new Error('virt-sysprep is not installed on this machine (apt-get install libguestfs-tools)')
          : error,
      );
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      killChildGroup(); // anything virt-sysprep left behind in its group
      if (child.pid) runningGroups.delete(child.pid);
      const output = Buffer.concat(chunks).toString('utf8');
      if (code === 0) return resolve(output);
      const why = timedOut
        ? `timed out after ${Math.round(timeoutMs / 1000)} s (its appliance was stopped)`
        : `exited with ${code ?? signal}`;
      reject(
        Object.assign(new Error(`virt-sysprep ${why}: ${output.trim().split('\n').slice(-3).join(' ')}`), { output }),
      );
    });
  });
}

/** The hypervisor went away mid seal (its SSH connection failed, closed or timed out): not kvmfleet's fault. */
export class HypervisorLostError extends Error {
  override readonly name = 'HypervisorLostError';
}

async function runOverSsh(uri: LibvirtUri, command: string, timeoutMs = SYSPREP_TIMEOUT_MS): Promise<string> {
  // Same session as libvirt's over that URI (key, host key check); root unless the URI names a user.
  const ssh = await connectSsh(sshTargetOf(uri, 20_000, 'root'));
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | null, output = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ssh.end();
      if (error) reject(error);
      else resolve(output);
    };
    // A peer that resets the connection mid-seal fails this seal, never the process.
    ssh.on('error', (error: Error) =>
      finish(new HypervisorLostError(`SSH to ${uri.host} failed during virt-sysprep: ${error.message}`)),
    );
    ssh.once('close', () => finish(new HypervisorLostError(`SSH to ${uri.host} closed before virt-sysprep finished`)));
    const timer = setTimeout(
      () =>
        finish(
          new HypervisorLostError(`virt-sysprep on ${uri.host} timed out after ${Math.round(timeoutMs / 1000)} s`),
        ),
      timeoutMs,
    );
    ssh.exec(command, (error, channel) => {
      if (error) return finish(error);
      let output = '';
      channel.on('error', (e: Error) => finish(e));
      channel.on('data', (d: Buffer) => (output += d));
      channel.stderr.on('data', (d: Buffer) => (output += d));
      channel.once('exit', (code: number | null) => {
        if (code === 0) finish(null, output);
        else
          finish(
            Object.assign(
              new Error(
                `virt-sysprep on ${uri.host} exited with ${code}: ${output.trim().split('\n').slice(-3).join(' ')}`,
              ),
              { output },
            ),
          );
      });
    });
  });
}

/**
 * Seals the qcow2 disk at `diskPath` on the hypervisor of `uri`. `tcg`: KVM was not proven to run
 * guests there (its domain type is not kvm), so the appliance runs under TCG; otherwise KVM is
 * tried and TCG used if it fails.
 */
export async function sysprepDisk(
  uri: LibvirtUri,
  diskPath: string,
  options: { tcg: boolean },
): Promise<SysprepResult> {
  // The "customize" operation would write a fresh machine-id into the template, which every clone
  // would then share; without it /etc/machine-id stays empty and each clone makes its own at first boot.
  const args = ['--operations', 'defaults,-customize', '--format', 'qcow2', '-a', diskPath];
  let output: string;
  if (uri.transport === 'unix') {
    try {
      output = await runLocal(args, options.tcg);
    } catch (error) {
      const text = (error as { output?: string }).output ?? '';
      if (options.tcg || !isGuestfsKvmFailure(text)) throw error;
      output = await runLocal(args, true);
    }
  } else if (uri.transport === 'ssh') {
    const env = `LIBGUESTFS_BACKEND=direct${options.tcg ? ' LIBGUESTFS_BACKEND_SETTINGS=force_tcg' : ''}`;
    output = await runOverSsh(uri, `env ${env} virt-sysprep ${args.map(shellQuote).join(' ')} 2>&1`);
  } else {
    throw new Error(
      `cannot run virt-sysprep on a hypervisor reached by ${uri.transport}: use a qemu+ssh:// URI for it`,
    );
  }
  return { operations: parseSysprepOperations(output), output };
}
