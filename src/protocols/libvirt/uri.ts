/**
 * libvirt connection URIs: driver[+transport]://[user@][host][:port]/path[?param=value&…].
 *   qemu:///system                       local daemon, unix socket
 *   qemu+unix:///system?socket=/path     local daemon, this socket
 *   qemu+tcp://hv1.example.com/system    plain TCP (port 16509), for trusted management networks
 *   qemu+ssh://root@hv1.example.com/system?keyfile=/root/.ssh/id_ed25519
 *                                        SSH to the hypervisor, then its local socket
 *   test:///default                      the daemon's test driver
 * What the daemon is asked to open is the URI without transport, user, host and port.
 */
import { shellQuote } from '../ssh/connect.ts';

export type Transport = 'unix' | 'tcp' | 'ssh';

export interface LibvirtUri {
  readonly driver: string;
  readonly transport: Transport;
  readonly user?: string;
  readonly host?: string;
  readonly port?: number;
  /** e.g. /system, /session, /default */
  readonly path: string;
  readonly params: ReadonlyMap<string, string>;
  /** The URI the daemon opens: driver:///path (e.g. qemu:///system). */
  readonly remoteUri: string;
  /** The URI as given, for messages. */
  readonly text: string;
}

export const DEFAULT_TCP_PORT = 16509;
export const DEFAULT_SSH_PORT = 22;
/** The monolithic daemon's socket; modular daemons have one per driver (virtqemud-sock, …). */
export const LEGACY_SOCKET = '/var/run/libvirt/libvirt-sock';

const DRIVER = /^[a-z][a-z0-9]*$/;
const TRANSPORTS: Record<string, Transport> = { unix: 'unix', tcp: 'tcp', ssh: 'ssh', libssh: 'ssh', libssh2: 'ssh' };
const KNOWN_PARAMS = new Set([
  'socket',
  'keyfile',
  'known_hosts',
  'no_verify',
  'proxy',
  'netcat',
  'command',
  'mode',
  'no_tty',
  'sshauth',
]);

export class LibvirtUriError extends Error {
  override readonly name = 'LibvirtUriError';
}

export function parseLibvirtUri(text: string): LibvirtUri {
  const bad = (why: string): never => {
    throw new LibvirtUriError(`libvirt URI ${JSON.stringify(text)}: ${why}`);
  };
  const scheme = /^([^:/?#]+):\/\//.exec(text)?.[1];
  if (!scheme) return bad('expected driver[+transport]://[user@][host][:port]/path');
  const [driver = '', transportName, ...more] = scheme.split('+');
  if (!DRIVER.test(driver) || more.length > 0) return bad(`"${scheme}" is not driver or driver+transport`);
  const rest = text.slice(scheme.length + 3);
  const authority = /^[^/?#]*/.exec(rest)![0];
  let url: URL;
  try {
    // URL() only parses authorities for schemes it knows, so parse as http and read the parts
    // (with a stand-in host when there is none: "qemu:///system").
    url = new URL(authority ? `http://${rest}` : `http://localhost${rest}`);
  } catch {
    return bad('it does not parse as a URI');
  }
  const host = authority ? url.hostname.replace(/^\[|\]$/g, '') || undefined : undefined;
  // libvirt's default for a URI with a host is TLS, which kvmfleet does not speak: make it explicit.
  if (transportName === undefined && host)
    bad('a remote host needs a transport kvmfleet speaks: +ssh or +tcp (TLS is not supported)');
  const transport: Transport =
    transportName === undefined
      ? 'unix'
      : (TRANSPORTS[transportName] ?? bad(`transport "${transportName}" is not supported (unix, tcp, ssh)`));
  if (transport === 'unix' && host) bad('a unix socket URI has no host');
  if (transport !== 'unix' && !host) bad(`+${transportName} needs a host`);
  const params = new Map<string, string>();
  for (const [key, value] of url.searchParams) {
    if (!KNOWN_PARAMS.has(key)) bad(`unknown parameter "${key}"`);
    params.set(key, value);
  }
  const path = decodeURIComponent(url.pathname);
  if (path === '/' || path === '') bad('it names no path (e.g. /system)');
  const port = url.port ? Number(url.port) : undefined;
  return {
    driver,
    transport,
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
    ...(host ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    path,
    params,
    remoteUri: `${driver}://${path}`,
    text,
  };
}

/**
 * The daemon socket: ?socket=, else the monolithic libvirtd's when it exists, else the modular
 * daemon of the driver (qemu → virtqemud-sock, lxc → virtlxcd-sock, …), as libvirt's client picks.
 * For SSH the far side is not probed: the legacy path (netcat) unless ?socket= names another.
 */
export function daemonSocket(uri: LibvirtUri, exists: (path: string) => boolean = () => true): string {
  const named = uri.params.get('socket');
  if (named) return named;
  if (uri.transport !== 'unix' || exists(LEGACY_SOCKET)) return LEGACY_SOCKET;
  return `/var/run/libvirt/virt${uri.driver}d-sock`;
}

/**
 * What runs on the hypervisor at the far end of SSH to reach its daemon: virt-ssh-helper (libvirt
 * ≥ 8.5) when present, else netcat on the daemon socket, as libvirt's own ssh transport does.
 * `?proxy=netcat` forces netcat, `?proxy=native` virt-ssh-helper.
 */
export function sshRemoteCommand(uri: LibvirtUri): string {
  const socket = shellQuote(daemonSocket(uri));
  const netcat = `${shellQuote(uri.params.get('netcat') ?? 'nc')} -U ${socket}`;
  const helper = `virt-ssh-helper ${shellQuote(uri.remoteUri)}`;
  switch (uri.params.get('proxy') ?? 'auto') {
    case 'netcat':
      return netcat;
    case 'native':
      return helper;
    default:
      return `sh -c ${shellQuote(`if command -v virt-ssh-helper >/dev/null 2>&1; then exec ${helper}; else exec ${netcat}; fi`)}`;
  }
}
