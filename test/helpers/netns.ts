/**
 * Test networks made of Linux network namespaces: a "server" and a "client" namespace joined by a
 * veth pair, with no uplink, no NAT and no forwarding. Everything the tests send stays inside them.
 * Removed by cleanup() — also at process exit, so a failing test leaves nothing behind.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const live = new Set<string>();

/**
 * Removes a namespace and first ends every process still in it: deleting a namespace does not end
 * them (dhclient, for one, goes to the background after its lease and renews it for ever).
 */
export function removeNamespaceSync(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* gone */
  }
}

async function removeNamespace(name: string): Promise<void> {
  removeNamespaceSync(name);
}

process.on('exit', () => {
  for (const name of live) removeNamespaceSync(name);
});

let counter = 0;

export interface Namespace {
  readonly name: string;
  readonly ip: string;
  readonly device: string;
  /** Runs a command inside the namespace and resolves with its output (rejects on non-zero exit). */
  exec(
    command: string,
    args: string[],
    options?: { timeoutMs?: number; maxBuffer?: number },
  ): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running command inside the namespace. */
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess;
}

export interface NamespacePair {
  readonly server: Namespace;
  readonly client: Namespace;
  readonly prefix: number;
  /** The first three octets of the pair's /24, e.g. "10.231.7". */
  readonly subnet: string;
  /** Drops this share of UDP datagrams arriving in each namespace (nftables; this kernel has no netem). */
  setUdpLoss(percent: number): Promise<void>;
  cleanup(): Promise<void>;
}

function namespace(name: string, ip: string, device: string): Namespace {
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

/**
 * Creates two namespaces on 10.231.<n>.0/24: server .1, client .2 (or no client address, for DHCP
 * clients). The server namespace routes 255.255.255.255 out of its link, so broadcast replies leave.
 */
export async function createNamespacePair(
  label: string,
  options: { clientAddress?: boolean } = {},
): Promise<NamespacePair> {
  if (process.getuid?.() !== 0) throw new Error('network namespace tests need root (run them as CI does)');
  const id = `${process.pid % 10000}${counter++}`;
  const serverName = `kvt-${label}-${id}-s`;
  const clientName = `kvt-${label}-${id}-c`;
  const subnet = `10.231.${(process.pid + counter) % 250}`;
  const serverDev = `ks${id}`.slice(0, 15);
  const clientDev = `kc${id}`.slice(0, 15);
  live.add(serverName);
  live.add(clientName);
  const ip = (...args: string[]) => run('ip', args);
  await ip('netns', 'add', serverName);
  await ip('netns', 'add', clientName);
  await ip(
    'link',
    'add',
    serverDev,
    'netns',
    serverName,
    'type',
    'veth',
    'peer',
    'name',
    clientDev,
    'netns',
    clientName,
  );
  for (const [ns, dev, addr] of [
    [serverName, serverDev, `${subnet}.1`],
    [clientName, clientDev, options.clientAddress === false ? undefined : `${subnet}.2`],
  ] as const) {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    if (addr) await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
    await ip('-n', ns, 'link', 'set', dev, 'up');
  }
  await ip(
    '-n',
    serverName,
    'route',
    'add',
    'broadcast',
    '255.255.255.255',
    'dev',
    serverDev,
    'table',
    'local',
    'proto',
    'kernel',
    'scope',
    'link',
  ).catch(() => ip('-n', serverName, 'route', 'add', '255.255.255.255/32', 'dev', serverDev));
  const server = namespace(serverName, `${subnet}.1`, serverDev);
  const client = namespace(clientName, `${subnet}.2`, clientDev);
  return {
    server,
    client,
    prefix: 24,
    subnet,
    async setUdpLoss(percent) {
      for (const ns of [server, client]) {
        await ns.exec('nft', ['flush', 'ruleset']);
        if (percent <= 0) continue;
        await ns.exec('nft', ['add', 'table', 'inet', 'kvtloss']);
        await ns.exec('nft', ['add', 'chain', 'inet', 'kvtloss', 'input', '{ type filter hook input priority 0; }']);
        await ns.exec('nft', [
          'add',
          'rule',
          'inet',
          'kvtloss',
          'input',
          'meta',
          'l4proto',
          'udp',
          'numgen',
          'random',
          'mod',
          '100',
          '<',
          String(percent),
          'drop',
        ]);
      }
    },
    async cleanup() {
      for (const name of [serverName, clientName]) {
        await removeNamespace(name);
        live.delete(name);
      }
    },
  };
}

export interface RelayChain {
  /** server ── upstream link ── relay ── downstream link ── client */
  readonly server: Namespace;
  readonly relay: Namespace & {
    readonly upstreamDevice: string;
    readonly downstreamDevice: string;
    readonly downstreamIp: string;
  };
  readonly client: Namespace;
  /** First three octets of the relayed (downstream) /24. */
  readonly relayedSubnet: string;
  readonly serverSubnet: string;
  cleanup(): Promise<void>;
}

/**
 * Three namespaces for DHCP relay tests: the server, a relay with a foot in each /24, and a client
 * on the far /24 with no address. The server routes the far /24 back through the relay.
 */
export async function createRelayChain(label: string): Promise<RelayChain> {
  const id = `${process.pid % 10000}${counter++}`;
  const names = { server: `kvt-${label}-${id}-s`, relay: `kvt-${label}-${id}-r`, client: `kvt-${label}-${id}-c` };
  const up = `10.233.${(process.pid + counter) % 250}`;
  const down = `10.234.${(process.pid + counter) % 250}`;
  const dev = {
    s: `rs${id}`.slice(0, 15),
    ru: `ru${id}`.slice(0, 15),
    rd: `rd${id}`.slice(0, 15),
    c: `rc${id}`.slice(0, 15),
  };
  const ip = (...args: string[]) => run('ip', args);
  for (const name of Object.values(names)) {
    live.add(name);
    await ip('netns', 'add', name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  }
  await ip('link', 'add', dev.s, 'netns', names.server, 'type', 'veth', 'peer', 'name', dev.ru, 'netns', names.relay);
  await ip('link', 'add', dev.rd, 'netns', names.relay, 'type', 'veth', 'peer', 'name', dev.c, 'netns', names.client);
  for (const [ns, d, addr] of [
    [names.server, dev.s, `${up}.1/24`],
    [names.relay, dev.ru, `${up}.2/24`],
    [names.relay, dev.rd, `${down}.1/24`],
    [names.client, dev.c, undefined],
  ] as const) {
    if (addr) await ip('-n', ns, 'addr', 'add', addr, 'dev', d);
    await ip('-n', ns, 'link', 'set', d, 'up');
  }
  await ip('-n', names.server, 'route', 'add', `${down}.0/24`, 'via', `${up}.2`);
  return {
    server: namespace(names.server, `${up}.1`, dev.s),
    relay: {
      ...namespace(names.relay, `${up}.2`, dev.ru),
      upstreamDevice: dev.ru,
      downstreamDevice: dev.rd,
      downstreamIp: `${down}.1`,
    },
    client: namespace(names.client, '', dev.c),
    relayedSubnet: down,
    serverSubnet: up,
    async cleanup() {
      for (const name of Object.values(names)) {
        await removeNamespace(name);
        live.delete(name);
      }
    },
  };
}

export interface Segment {
  /** One namespace per member, each with one port on an isolated bridge (in its own namespace, no uplink). */
  readonly members: Record<string, Namespace>;
  readonly bridge: { readonly namespace: string; readonly name: string };
  readonly subnet: string;
  cleanup(): Promise<void>;
}

/**
 * An Ethernet segment: a bridge inside a "switch" namespace, and one namespace per member plugged
 * into it by a veth pair. Members listed in `addressed` get subnet.N (N = 1, 2, … in order).
 */
export async function createSegment(
  label: string,
  memberNames: readonly string[],
  addressed: readonly string[],
): Promise<Segment> {
  const id = `${process.pid % 10000}${counter++}`;
  const switchNs = `kvt-${label}-${id}-sw`;
  const subnet = `10.235.${(process.pid + counter) % 250}`;
  const ip = (...args: string[]) => run('ip', args);
  const all = [switchNs, ...memberNames.map((m) => `kvt-${label}-${id}-${m}`)];
  for (const name of all) {
    live.add(name);
    await ip('netns', 'add', name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  }
  const bridge = 'br0';
  await ip('-n', switchNs, 'link', 'add', bridge, 'type', 'bridge');
  await ip('-n', switchNs, 'link', 'set', bridge, 'up');
  const members: Record<string, Namespace> = {};
  let n = 0;
  for (const [i, member] of memberNames.entries()) {
    const ns = all[i + 1]!;
    const inside = `e${id}${i}`.slice(0, 15);
    const port = `p${id}${i}`.slice(0, 15);
    await ip('link', 'add', inside, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', switchNs);
    await ip('-n', switchNs, 'link', 'set', port, 'master', bridge);
    await ip('-n', switchNs, 'link', 'set', port, 'up');
    let address = '';
    if (addressed.includes(member)) {
      address = `${subnet}.${++n}`;
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', inside);
    }
    await ip('-n', ns, 'link', 'set', inside, 'up');
    if (address) await ip('-n', ns, 'route', 'add', '255.255.255.255/32', 'dev', inside).catch(() => {});
    members[member] = namespace(ns, address, inside);
  }
  return {
    members,
    bridge: { namespace: switchNs, name: bridge },
    subnet,
    async cleanup() {
      for (const name of all) {
        await removeNamespace(name);
        live.delete(name);
      }
    },
  };
}
