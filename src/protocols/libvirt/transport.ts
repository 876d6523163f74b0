/**
 * Byte streams to a libvirt daemon for each URI transport: a unix socket, TCP, or an SSH channel
 * running virt-ssh-helper (or netcat) on the hypervisor. SSH authenticates with a key file
 * (?keyfile=, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa) or the SSH agent, and checks the host key
 * against known_hosts (?known_hosts=, else ~/.ssh/known_hosts) unless ?no_verify=1.
 */
import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import type { Duplex } from 'node:stream';
import { connectSsh, type SshTarget } from '../ssh/connect.ts';
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

/** The SSH session a +ssh URI names: ?keyfile=, ?known_hosts=, ?no_verify=1; the user defaults to ours, as libvirt's. */
export function sshTargetOf(uri: LibvirtUri, timeoutMs: number, defaultUser = userInfo().username): SshTarget {
  return {
    host: uri.host!,
    port: uri.port ?? DEFAULT_SSH_PORT,
    user: uri.user ?? defaultUser,
    keyFile: uri.params.get('keyfile'),
    knownHostsFile: uri.params.get('known_hosts'),
    verifyHostKey: uri.params.get('no_verify') !== '1',
    timeoutMs,
    label: uri.text,
  };
}

async function sshConnect(uri: LibvirtUri, timeoutMs: number): Promise<Duplex> {
  const ssh = await connectSsh(sshTargetOf(uri, timeoutMs));
  return new Promise((resolve, reject) => {
    ssh.exec(sshRemoteCommand(uri), (error, channel) => {
      if (error) {
        ssh.end();
        return reject(new Error(`${uri.text}: ${error.message}`));
      }
      const broken = (e: Error) => {
        channel.emit('error', e);
        channel.destroy();
      };
      ssh.on('error', broken);
      let stderr = '';
      channel.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      channel.once('close', () => ssh.end());
      channel.once('exit', (code: number | null) => {
        if (code)
          broken(new Error(`${uri.text}: the remote helper exited with ${code}${stderr ? `: ${stderr.trim()}` : ''}`));
      });
      resolve(channel);
    });
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
