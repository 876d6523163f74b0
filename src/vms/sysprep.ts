/**
 * Sealing a template's disk with virt-sysprep (libguestfs-tools): it removes what makes a machine
 * one machine (SSH host keys, machine-id, logs, net rules, …) so clones start clean. It runs where
 * the disk is: on this machine for a local hypervisor, over SSH on a remote one. Without working
 * KVM, libguestfs' appliance runs under TCG (force_tcg), as kvmfleet's guests do.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sshTargetOf } from '../protocols/libvirt/transport.ts';
import type { LibvirtUri } from '../protocols/libvirt/uri.ts';
import { connectSsh, shellQuote } from '../protocols/ssh/connect.ts';

const run = promisify(execFile);

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
  return /kvm_buf_set_msrs|failed to initialize kvm|Could not access KVM kernel module|KVM: (?:disabled|unavailable)/i.test(output);
}

async function runLocal(args: string[], tcg: boolean): Promise<string> {
  const env = { ...process.env, LIBGUESTFS_BACKEND: 'direct', ...(tcg ? { LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } : {}) };
  try {
    const { stdout, stderr } = await run('virt-sysprep', args, { env, maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 });
    return stdout + stderr;
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string; code?: string };
    if (e.code === 'ENOENT') throw new Error('virt-sysprep is not installed on this machine (apt-get install libguestfs-tools)');
    throw Object.assign(new Error(`virt-sysprep failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' ')}`), { output: `${e.stdout ?? ''}${e.stderr ?? ''}` });
  }
}

async function runOverSsh(uri: LibvirtUri, command: string): Promise<string> {
  // Same session as libvirt's over that URI (key, host key check); root unless the URI names a user.
  const ssh = await connectSsh(sshTargetOf(uri, 20_000, 'root'));
  return new Promise((resolve, reject) => {
    ssh.exec(command, (error, channel) => {
      if (error) return (ssh.end(), reject(error));
      let output = '';
      channel.on('data', (d: Buffer) => (output += d));
      channel.stderr.on('data', (d: Buffer) => (output += d));
      channel.once('exit', (code: number | null) => {
        ssh.end();
        if (code === 0) resolve(output);
        else reject(Object.assign(new Error(`virt-sysprep on ${uri.host} exited with ${code}: ${output.trim().split('\n').slice(-3).join(' ')}`), { output }));
      });
    });
  });
}

/**
 * Seals the qcow2 disk at `diskPath` on the hypervisor of `uri`. `tcg`: the hypervisor has no
 * working KVM (known from its domain type); otherwise KVM is tried and TCG used if it fails.
 */
export async function sysprepDisk(uri: LibvirtUri, diskPath: string, options: { tcg: boolean }): Promise<SysprepResult> {
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
    throw new Error(`cannot run virt-sysprep on a hypervisor reached by ${uri.transport}: use a qemu+ssh:// URI for it`);
  }
  return { operations: parseSysprepOperations(output), output };
}
