/**
 * The capacity planner: the seed's question — how many concurrent Kickstarts, and so how many
 * boot servers per site, clustered or distributed? One pure function from the inputs and the
 * measured per-server figures (from `npm run bench`) to numbers and the reasoning behind them.
 */
export interface PlanInput {
  readonly hostsPerSite: number;
  /** Networks (broadcast domains) the site's hypervisors are spread over. */
  readonly networksPerSite: number;
  /** Bytes each install fetches from the tree (kernel, initrd, stage2, packages). */
  readonly installBytesPerHost: number;
  /** One build, power-on to callback, in minutes. */
  readonly buildMinutes: number;
  /** Time allowed to build the whole site, in hours. */
  readonly windowHours: number;
  /** Share of a build spent downloading (the rest is disk writes, %post, reboots). */
  readonly downloadShare: number;
  /** Measured install-tree throughput of one kvmfleet boot server (MiB/s). */
  readonly serverTreeMiBps: number;
  /** Measured Kickstart answers per second of one server. */
  readonly serverKickstartsPerSecond: number;
  /** Measured DHCP ACKs per second of one server. */
  readonly serverDhcpAcksPerSecond: number;
  /** Network interface of a boot server, Gbit/s (caps the measured throughput). */
  readonly nicGbit: number;
  /** Keep this share of each server's capacity free (0.3 = plan to 70 %). */
  readonly headroom: number;
  /** Above this many networks per site, a boot node per network is too many machines to run. */
  readonly maxDistributedNetworks: number;
}

export const PLAN_DEFAULTS = {
  networksPerSite: 10,
  installBytesPerHost: 1.5 * 2 ** 30,
  buildMinutes: 20,
  windowHours: 8,
  downloadShare: 0.3,
  nicGbit: 10,
  headroom: 0.3,
  maxDistributedNetworks: 10,
} as const;

export interface Plan {
  readonly concurrentBuilds: number;
  /** The site build cap to set. */
  readonly buildCap: number;
  readonly requiredMiBps: number;
  readonly perServerMiBps: number;
  readonly topology: 'clustered' | 'distributed';
  /** Boot HTTP servers per site (clustered: behind the load balancer, N+1; distributed: one per network). */
  readonly bootServers: number;
  readonly fitsWindow: boolean;
  readonly reasoning: string[];
}

const MiB = 2 ** 20;
const round = (n: number, digits = 0) => Number(n.toFixed(digits));

export function planCapacity(input: PlanInput): Plan {
  for (const [key, value] of Object.entries(input)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      throw new Error(`${key} must be a number ≥ 0, not ${value}`);
  }
  if (
    input.hostsPerSite < 1 ||
    input.buildMinutes <= 0 ||
    input.windowHours <= 0 ||
    input.downloadShare <= 0 ||
    input.downloadShare > 1
  ) {
    throw new Error('hosts ≥ 1, build minutes > 0, window > 0 and 0 < download share ≤ 1 are needed');
  }
  const reasoning: string[] = [];
  const windowMinutes = input.windowHours * 60;
  const waves = Math.floor(windowMinutes / input.buildMinutes);
  const fitsWindow = waves >= 1;
  const concurrentBuilds = Math.ceil(input.hostsPerSite / Math.max(1, waves));
  reasoning.push(
    `${input.hostsPerSite} hosts, ${input.buildMinutes} min per build, ${input.windowHours} h window → ${waves} waves of builds fit; ${concurrentBuilds} must build at once.`,
  );
  if (!fitsWindow) reasoning.push(`the window is shorter than one build: it cannot be met whatever the servers.`);
  const perHostMiBps = input.installBytesPerHost / MiB / (input.buildMinutes * 60 * input.downloadShare);
  const requiredMiBps = concurrentBuilds * perHostMiBps;
  reasoning.push(
    `each build fetches ${round(input.installBytesPerHost / MiB)} MiB in the ${round(input.downloadShare * 100)} % of its time spent downloading → ${round(perHostMiBps, 2)} MiB/s per host, ${round(requiredMiBps, 1)} MiB/s for the site.`,
  );
  const nicMiBps = (input.nicGbit * 1e9) / 8 / MiB;
  const perServerMiBps = Math.min(input.serverTreeMiBps, nicMiBps) * (1 - input.headroom);
  reasoning.push(
    `one boot server: ${round(input.serverTreeMiBps)} MiB/s measured, ${round(nicMiBps)} MiB/s on a ${input.nicGbit} Gbit/s NIC; planned at ${round((1 - input.headroom) * 100)} % → ${round(perServerMiBps, 1)} MiB/s.`,
  );
  const serversForBandwidth = Math.max(1, Math.ceil(requiredMiBps / perServerMiBps));
  // Requests per build are a handful (DHCP ×2, script, Kickstart, callback): check they are not the limit.
  const requestRate = (concurrentBuilds * 5) / (input.buildMinutes * 60);
  const serversForRequests = Math.max(
    1,
    Math.ceil(requestRate / (input.serverKickstartsPerSecond * (1 - input.headroom) || 1)),
  );
  reasoning.push(
    `bandwidth needs ${serversForBandwidth} server(s); requests (${round(requestRate, 2)}/s against ${round(input.serverKickstartsPerSecond)} Kickstarts/s and ${round(input.serverDhcpAcksPerSecond)} DHCP ACKs/s per server) need ${serversForRequests}.`,
  );
  const needed = Math.max(serversForBandwidth, serversForRequests);
  const perNetworkMiBps = requiredMiBps / Math.max(1, input.networksPerSite);
  let topology: Plan['topology'];
  let bootServers: number;
  if (input.networksPerSite <= input.maxDistributedNetworks && perNetworkMiBps <= perServerMiBps) {
    topology = 'distributed';
    bootServers = input.networksPerSite;
    reasoning.push(
      `${input.networksPerSite} networks, ${round(perNetworkMiBps, 1)} MiB/s each: one boot node per network carries its network's builds (no relays, no load balancer; a failed node stops one network only) → distributed, ${bootServers} boot nodes.`,
    );
  } else {
    topology = 'clustered';
    bootServers = needed + 1;
    reasoning.push(
      input.networksPerSite > input.maxDistributedNetworks
        ? `${input.networksPerSite} networks are more boot nodes than are worth running (over ${input.maxDistributedNetworks}) → clustered: relays on the routers, a DHCP failover pair, ${needed} boot server(s) + 1 spare behind the load balancer = ${bootServers}.`
        : `one network needs ${round(perNetworkMiBps, 1)} MiB/s, more than one server's ${round(perServerMiBps, 1)} → clustered: ${needed} boot server(s) + 1 spare behind the load balancer = ${bootServers}, a DHCP failover pair.`,
    );
  }
  const buildCap = concurrentBuilds;
  reasoning.push(
    `set the site's build cap to ${buildCap}: more would start builds the window does not need and the servers were not planned for.`,
  );
  return {
    concurrentBuilds,
    buildCap,
    requiredMiBps: round(requiredMiBps, 1),
    perServerMiBps: round(perServerMiBps, 1),
    topology,
    bootServers,
    fitsWindow,
    reasoning,
  };
}
