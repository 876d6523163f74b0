/**
 * The e2e lab: a network namespace for kvmfleet's boot roles, joined by a veth pair to an isolated
 * bridge in the root namespace (no address, no uplink, no NAT, no forwarding), on which libvirt
 * plugs its guests. Everything it makes is removed by cleanup() — and at process exit, so a failing
 * test leaves no namespace, bridge or guest behind.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { removeNamespaceSync } from '../helpers/netns.ts';

const run = promisify(execFile);

export interface Lab {
  /** Namespace where kvmfleet runs. */
  readonly namespace: string;
  /** Root-namespace bridge the guests are plugged into. */
  readonly bridge: string;
  /** kvmfleet's address on the boot network, and the network's first three octets. */
  readonly serverIp: string;
  readonly subnet: string;
  /** Runs a command in kvmfleet's namespace. */
  exec(command: string, args: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
  cleanup(): Promise<void>;
}

const exitCleanups = new Set<() => void>();
process.on('exit', () => {
  for (const cleanup of exitCleanups) cleanup();
});

function quietly(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}

export async function createLab(): Promise<Lab> {
  if (process.getuid?.() !== 0) throw new Error('the e2e test needs root (namespaces, bridges, libvirt guests)');
  const id = String(process.pid % 100000);
  const namespace = `kvfe2e-${id}`;
  const bridge = `kvfbr${id}`;
  const [vethRoot, vethNs] = [`kvfv${id}`, `kvfn${id}`];
  const subnet = '10.78.0';
  const serverIp = `${subnet}.1`;
  const removeAll = () => {
    quietly('ip', ['link', 'del', vethRoot]);
    quietly('ip', ['link', 'del', bridge]);
    removeNamespaceSync(namespace);
  };
  exitCleanups.add(removeAll);
  const ip = (...args: string[]) => run('ip', args);
  try {
    await ip('netns', 'add', namespace);
    await ip('link', 'add', bridge, 'type', 'bridge');
    // The bridge carries only the lab's frames: no IPv6 autoconfiguration, no address, no STP delay.
    await run('sysctl', ['-qw', `net.ipv6.conf.${bridge}.disable_ipv6=1`]);
    await ip('link', 'set', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await ip('link', 'add', vethRoot, 'type', 'veth', 'peer', 'name', vethNs);
    await run('sysctl', ['-qw', `net.ipv6.conf.${vethRoot}.disable_ipv6=1`]);
    await ip('link', 'set', vethRoot, 'master', bridge);
    await ip('link', 'set', vethNs, 'netns', namespace);
    await ip('-n', namespace, 'link', 'set', 'lo', 'up');
    await ip('-n', namespace, 'link', 'set', vethNs, 'name', 'boot0');
    await ip('-n', namespace, 'addr', 'add', `${serverIp}/24`, 'dev', 'boot0');
    await ip('-n', namespace, 'link', 'set', 'boot0', 'up');
    // Broadcast replies to clients with no address yet leave by the boot link.
    await ip('-n', namespace, 'route', 'add', '255.255.255.255/32', 'dev', 'boot0');
    await ip('link', 'set', vethRoot, 'up');
    await ip('link', 'set', bridge, 'up');
  } catch (error) {
    removeAll();
    throw error;
  }
  return {
    namespace,
    bridge,
    serverIp,
    subnet,
    exec: (command, args, timeoutMs = 120_000) =>
      run('ip', ['netns', 'exec', namespace, command, ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }),
    async cleanup() {
      removeAll();
      exitCleanups.delete(removeAll);
    },
  };
}

/** Interfaces and namespaces left by a lab (for the "nothing left behind" assertion). */
export async function labLeftovers(lab: Lab): Promise<string[]> {
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  const namespaces = (await run('ip', ['netns', 'list'])).stdout;
  return [
    ...(links.includes(`${lab.bridge}:`) ? [`bridge ${lab.bridge}`] : []),
    ...(namespaces.split('\n').some((l) => l.startsWith(lab.namespace)) ? [`namespace ${lab.namespace}`] : []),
  ];
}
