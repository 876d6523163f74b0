/**
 * The power e2e's management network: the BMCs live in a namespace of their own, joined by a veth
 * pair to kvmfleet's namespace (a BMC port is cabled to an out-of-band switch, not to the boot
 * network), on 10.79.0.0/24 — kvmfleet .1, BMC n at .(10 + n). No uplink, no NAT, no forwarding.
 * Each BMC is a real ipmi_sim (test/bmc/ipmi-sim.ts) on its own address, its chassis control wired
 * to one libvirt guest (test/bmc/chassis-libvirt.ts). cleanup() stops them and removes the namespace
 * (which takes the veth pair with it) — also at process exit, so a failing run leaves nothing behind.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { LIBVIRT_CHASSIS_SCRIPT } from '../bmc/chassis-libvirt.ts';
import { startIpmiSim, type IpmiSim } from '../bmc/ipmi-sim.ts';
import { removeNamespaceSync, type Namespace } from '../helpers/netns.ts';
import type { Lab } from './lab.ts';

const run = promisify(execFile);
const SUBNET = '10.79.0';

export interface BmcNetwork {
  readonly namespace: string;
  /** kvmfleet's address on the management network (in the lab's namespace). */
  readonly serverIp: string;
  /** Starts BMC number n (1…200) for a libvirt domain, with its own user and password. */
  addBmc(n: number, domain: string, login: { username: string; password: string }): Promise<IpmiSim>;
  readonly bmcs: readonly IpmiSim[];
  cleanup(): Promise<void>;
}

const exitCleanups = new Set<() => void>();
process.on('exit', () => {
  for (const cleanup of exitCleanups) cleanup();
});

function inNamespace(name: string, ip: string, device: string): Namespace {
  return {
    name,
    ip,
    device,
    exec: (command, args, options = {}) =>
      run('ip', ['netns', 'exec', name, command, ...args], {
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
      }),
    spawn: (command, args, options = {}) => spawn('ip', ['netns', 'exec', name, command, ...args], options),
  };
}

export async function createBmcNetwork(lab: Lab): Promise<BmcNetwork> {
  const id = String(process.pid % 100000);
  const namespace = `kvfbmc-${id}`;
  const [vethLab, vethBmc] = [`kvfm${id}`, `kvfb${id}`];
  const serverIp = `${SUBNET}.1`;
  const bmcs: IpmiSim[] = [];
  // Deleting the namespace ends what runs in it (ipmi_sim, its chassis scripts) and its veth end.
  const removeAll = () => removeNamespaceSync(namespace);
  exitCleanups.add(removeAll);
  const ip = (...args: string[]) => run('ip', args);
  try {
    await ip('netns', 'add', namespace);
    await ip(
      'link',
      'add',
      vethLab,
      'netns',
      lab.namespace,
      'type',
      'veth',
      'peer',
      'name',
      vethBmc,
      'netns',
      namespace,
    );
    await ip('-n', lab.namespace, 'link', 'set', vethLab, 'name', 'mgmt0');
    await ip('-n', lab.namespace, 'addr', 'add', `${serverIp}/24`, 'dev', 'mgmt0');
    await ip('-n', lab.namespace, 'link', 'set', 'mgmt0', 'up');
    await ip('-n', namespace, 'link', 'set', 'lo', 'up');
    await ip('-n', namespace, 'link', 'set', vethBmc, 'name', 'mgmt0');
    await ip('-n', namespace, 'link', 'set', 'mgmt0', 'up');
  } catch (error) {
    removeAll();
    exitCleanups.delete(removeAll);
    throw error;
  }
  return {
    namespace,
    serverIp,
    bmcs,
    async addBmc(n, domain, login) {
      if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`BMC number ${n} is not in 1…200`);
      const address = `${SUBNET}.${10 + n}`;
      await ip('-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'mgmt0');
      const sim = await startIpmiSim(inNamespace(namespace, address, 'mgmt0'), {
        ...login,
        libvirtDomain: domain,
        chassisScript: LIBVIRT_CHASSIS_SCRIPT,
      });
      bmcs.push(sim);
      return sim;
    },
    async cleanup() {
      for (const sim of bmcs.splice(0)) await sim.stop().catch(() => {});
      removeAll();
      exitCleanups.delete(removeAll);
    },
  };
}

/** The management namespace, if it is still there (for the "nothing left behind" assertion). */
export async function bmcNetworkLeftovers(network: BmcNetwork): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').some((l) => l.split(' ')[0] === network.namespace)
    ? [`namespace ${network.namespace}`]
    : [];
}
