/**
 * Byte streams to a libvirt daemon for each URI transport: a unix socket, TCP, or an SSH channel
 * running virt-ssh-helper (or netcat) on the hypervisor. SSH authenticates with a key file
 * (?keyfile=, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa) or the SSH agent, and checks the host key
 * against known_hosts (?known_hosts=, else ~/.ssh/known_hosts) unless ?no_verify=1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Client as SshClient, type ConnectConfig } from 'ssh2';
import { verifyHostKey } from '../ssh/known-hosts.ts';
import { daemonSocket, DEFAULT_SSH_PORT, DEFAULT_TCP_PORT, sshRemoteCommand, type LibvirtUri } from './uri.ts';

export interface TransportOptions {
  /** How long to wait for the connection (and the SSH handshake). */
  readonly connectTimeoutMs?: number;
}

function socketConnect(socket: Socket, timeoutMs: number, what: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what}: no connection after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${error.message}`));
    });
  });
}

function defaultKey(): string | undefined {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f)).find((p) => existsSync(p));
}

function sshConnect(uri: LibvirtUri, timeoutMs: number): Promise<Duplex> {
  const host = uri.host!;
  const port = uri.port ?? DEFAULT_SSH_PORT;
  const username = uri.user ?? userInfo().username;
  const keyFile = uri.params.get('keyfile') ?? defaultKey();
  const knownHostsFile = uri.params.get('known_hosts') ?? join(homedir(), '.ssh', 'known_hosts');
  const verify = uri.params.get('no_verify') !== '1';
  let hostKeyProblem: string | undefined;
  const config: ConnectConfig = {
    host,
    port,
    username,
    readyTimeout: timeoutMs,
    ...(keyFile ? { privateKey: readFileSync(keyFile) } : {}),
    ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
    hostVerifier: (key: Buffer) => {
      if (!verify) return true;
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
  };
  return new Promise((resolve, reject) => {
    const ssh = new SshClient();
    const fail = (error: Error) => {
      ssh.end();
      reject(new Error(`${uri.text}: ${hostKeyProblem ?? error.message}`));
    };
    ssh.once('error', fail);
    ssh.once('ready', () => {
      ssh.exec(sshRemoteCommand(uri), (error, channel) => {
        if (error) return fail(error);
        ssh.off('error', fail);
        const broken = (e: Error) => {
          channel.emit('error', e);
          channel.destroy();
        };
        ssh.on('error', broken);
        let stderr = '';
        channel.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
        channel.once('close', () => ssh.end());
        channel.once('exit', (code: number | null) => {
          if (code) broken(new Error(`${uri.text}: the remote helper exited with ${code}${stderr ? `: ${stderr.trim()}` : ''}`));
        });
        resolve(channel);
      });
    });
    ssh.connect(config);
  });
}

export function openTransport(uri: LibvirtUri, options: TransportOptions = {}): Promise<Duplex> {
  const timeoutMs = options.connectTimeoutMs ?? 20_000;
  switch (uri.transport) {
    case 'unix': {
      const path = daemonSocket(uri, existsSync);
      return socketConnect(createConnection(path), timeoutMs, `libvirt socket ${path}`);
    }
    case 'tcp': {
      const port = uri.port ?? DEFAULT_TCP_PORT;
      return socketConnect(createConnection({ host: uri.host!, port }), timeoutMs, `libvirt at ${uri.host}:${port}`);
    }
    case 'ssh':
      return sshConnect(uri, timeoutMs);
  }
}
