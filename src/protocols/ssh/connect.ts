/**
 * An SSH session to a hypervisor, as kvmfleet opens them (libvirt's transport, virt-sysprep on the
 * far side): a key file (given, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa) or the SSH agent, and the
 * host key checked against known_hosts unless verification is turned off.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Client as SshClient } from 'ssh2';
import { verifyHostKey } from './known-hosts.ts';

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly keyFile?: string | undefined;
  readonly knownHostsFile?: string | undefined;
  readonly verifyHostKey: boolean;
  readonly timeoutMs: number;
  /** What errors name (e.g. the libvirt URI). */
  readonly label: string;
}

/** A word for a POSIX shell, single-quoted. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function defaultKey(): string | undefined {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f)).find((p) => existsSync(p));
}

/** Resolves with the client once authenticated; an unknown, changed or revoked host key is refused with why. */
export function connectSsh(target: SshTarget): Promise<SshClient> {
  const { host, port } = target;
  const keyFile = target.keyFile ?? defaultKey();
  const knownHostsFile = target.knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts');
  let hostKeyProblem: string | undefined;
  return new Promise((resolve, reject) => {
    const ssh = new SshClient();
    const fail = (error: Error) => {
      ssh.end();
      reject(new Error(`${target.label}: ${hostKeyProblem ?? error.message}`));
    };
    ssh.once('error', fail);
    ssh.once('ready', () => {
      ssh.off('error', fail);
      resolve(ssh);
    });
    ssh.connect({
      host,
      port,
      username: target.user,
      readyTimeout: target.timeoutMs,
      ...(keyFile ? { privateKey: readFileSync(keyFile) } : {}),
      ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
      hostVerifier: (key: Buffer) => {
        if (!target.verifyHostKey) return true;
        const known = existsSync(knownHostsFile) ? readFileSync(knownHostsFile, 'utf8') : '';
        const verdict = verifyHostKey(known, host, port, key);
        if (verdict.ok) return true;
        hostKeyProblem =
          verdict.reason === 'changed'
            ? `the host key of ${host}:${port} does not match ${knownHostsFile} (changed host key: refusing)`
            : verdict.reason === 'revoked'
              ? `the host key of ${host}:${port} is revoked in ${knownHostsFile}`
              : `the host key of ${host}:${port} is not in ${knownHostsFile} (add it with ssh-keyscan, or use ?no_verify=1)`;
        return false;
      },
    });
  });
}
