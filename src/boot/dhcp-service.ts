/**
 * The DHCP role's policy: which network a request belongs to (giaddr of its relay, or our own
 * segment), which address a client gets (its reservation from the inventory, else the network's
 * dynamic pool), what it is told to boot, and leases made durable before the ACK is sent.
 * In proxy mode it gives no addresses at all, only boot information to PXE clients.
 */
import type { Kysely } from 'kysely';
import {
  broadcastOf,
  cidrContains,
  formatIpv4,
  maskOf,
  parseCidr,
  parseIpv4,
  toIpv4,
  UNSPECIFIED,
  type Cidr,
  type Ipv4,
} from '../protocols/ipv4.ts';
import { LeasePool, type PoolStats } from '../protocols/dhcp4/lease-pool.ts';
import { ipv4, ipv4List, text, u32 } from '../protocols/dhcp4/option-codecs.ts';
import { OptionCode } from '../protocols/dhcp4/options.ts';
import { clientMac, messageType, MessageType, type DhcpPacket } from '../protocols/dhcp4/packet.ts';
import {
  clientIdHex,
  clientKey,
  hostName,
  requestAddresses,
  requestState,
  type RequestAddresses,
  type RequestState,
} from '../protocols/dhcp4/accessors.ts';
import { inRequestedOrder, replyTo } from '../protocols/dhcp4/build.ts';
import { pxeVendorOptions } from '../protocols/dhcp4/pxe.ts';
import { replyDestination } from '../protocols/dhcp4/reply-address.ts';
import type { DhcpReply } from '../protocols/dhcp4/server.ts';
import type { LeaseWriter } from '../store/lease-writer.ts';
import type { Database } from '../store/schema.ts';
import { inventoryEvents } from '../store/tx.ts';
import { recordEvent, registerDiscovered } from '../fleet/builds.ts';
import type { TimelineWriter } from '../fleet/timeline-writer.ts';
import { classifyClient, dhcpBootAnswer } from './classify.ts';
import { DiscoveryLimiter } from './rate-limit.ts';
import { bootUrls } from './urls.ts';
import { HTTP_BOOT_IPXE_EFI } from './firmware-http.ts';
import type { FailoverMachine } from './dhcp-failover.ts';
import { StoreBootBackend, type BootBackend, type BootHost } from './backend.ts';
import { HostCache } from './host-cache.ts';

export interface DhcpServiceOptions {
  readonly db: Kysely<Database>;
  /** Where machines are looked up; default: the store behind `db`. */
  readonly backend?: BootBackend | undefined;
  readonly writer: LeaseWriter;
  /** Our address on the boot segment: option 54, and how directly attached clients find their network. */
  readonly serverId: string;
  readonly mode: 'full' | 'proxy';
  /** TFTP server for firmware (siaddr, option 66); default: serverId. */
  readonly nextServer?: string | undefined;
  /** Base URL of the boot HTTP role, for iPXE scripts. */
  readonly bootBaseUrl: string;
  readonly offerTtlMs?: number;
  /** How long a declined address sits out (RFC 2131 §4.3.3); default 24 h, as Kea's decline-probation-period. */
  readonly declineProbationMs?: number | undefined;
  /** Clients each dynamic pool remembers at most (see LeasePool); default: the pool's own. */
  readonly poolMaxClients?: number | undefined;
  readonly refreshMs?: number;
  /** Bounds the discovered hosts and timeline events DISCOVERs create (default: its own, DEFAULT_DISCOVERY_LIMITS). */
  readonly discovery?: DiscoveryLimiter | undefined;
  /** Store errors of background work (refresh, lease reload), with their cause; default: none. */
  readonly onError?: ((error: unknown) => void) | undefined;
  /** One of a failover pair: which clients and which half of each pool are this server's. */
  readonly failover?: FailoverMachine | undefined;
  /** Group commit of timeline events (DISCOVERs of network-booting machines); default: one INSERT each. */
  readonly timeline?: TimelineWriter | undefined;
  /** A distributed site's boot node serves only these networks (by name); default: all. */
  readonly networks?: readonly string[] | undefined;
}

/** A network as the handler needs it, its addresses parsed once when the inventory is read. */
interface NetworkView {
  readonly id: number;
  readonly name: string;
  readonly cidr: Cidr;
  readonly gateway: Ipv4 | null;
  readonly dns: Ipv4[];
  readonly domain: string;
  readonly leaseSeconds: number;
  /** Source addresses relayed packets for this network may come from. */
  readonly relays: readonly Ipv4[];
  readonly pool: LeasePool | undefined;
}

/** One request on its way through the handler, its fields read once. */
interface Ask {
  readonly request: DhcpPacket;
  /** The request's addresses, as numbers. */
  readonly at: RequestAddresses;
  readonly state: RequestState;
  /** The lease key: client identifier, else MAC — the MAC for a reserved address (see handle). */
  readonly key: string;
  /** The client identifier stored with its lease (none for a reserved address). */
  readonly clientId: string | null;
  readonly mac: string;
  readonly network: NetworkView;
  readonly client: ReturnType<typeof classifyClient>;
  readonly host: HostView | undefined;
  readonly reservation: Ipv4 | undefined;
  readonly now: number;
}

export const DECLINE_PROBATION_MS = 86_400_000;

interface HostView {
  readonly id: number;
  readonly hostname: string;
  readonly ip: Ipv4 | null;
  readonly networkId: number | null;
  readonly buildState: string;
}

/** A host as the handler sees it (the store keeps addresses as text). */
const hostView = (host: BootHost): HostView => ({
  id: host.id,
  hostname: host.hostname,
  ip: host.ip === null ? null : toIpv4(host.ip),
  networkId: host.networkId,
  buildState: host.buildState,
});

export class DhcpService {
  readonly #options: DhcpServiceOptions;
  /** Our address (option 54) and the TFTP server's (siaddr), parsed once. */
  readonly #server: Ipv4;
  readonly #nextServer: Ipv4;
  /** What a booting client is pointed at (see dhcpBootAnswer), built once. */
  readonly #bootUrls: { readonly script: string; readonly httpIpxeEfi: string };
  #networks: NetworkView[] = [];
  /** Pools survive a refresh of the network list as long as the range is unchanged. */
  readonly #pools = new Map<string, LeasePool>();
  #reserved = new Set<Ipv4>();
  readonly #backend: BootBackend;
  /**
   * Hosts by MAC as of the last refresh: for clients that are not network-booting (see handle), and
   * for everyone while the store does not answer.
   */
  readonly #hosts: HostCache;
  #timer: NodeJS.Timeout | undefined;
  #refreshedAt = 0;
  readonly #discovery: DiscoveryLimiter;
  readonly stats = {
    noNetwork: 0,
    poolExhausted: 0,
    naks: 0,
    discovered: 0,
    partnersClients: 0,
    relayRefused: 0,
    storeRefused: 0,
    declinesIgnored: 0,
    silentInitReboot: 0,
    proxyNotAddressed: 0,
  };

  constructor(options: DhcpServiceOptions) {
    this.#options = options;
    this.#server = toIpv4(options.serverId);
    this.#nextServer = toIpv4(options.nextServer ?? options.serverId);
    this.#bootUrls = {
      script: bootUrls(options.bootBaseUrl).script(),
      httpIpxeEfi: `${options.bootBaseUrl.replace(/\/+$/, '')}${HTTP_BOOT_IPXE_EFI}`,
    };
    this.#discovery = options.discovery ?? new DiscoveryLimiter();
    this.#backend = options.backend ?? new StoreBootBackend(options.db);
    this.#hosts = new HostCache(this.#backend);
    // Entering partner-down, or leaving recover: the partner's leases must be known before serving its half.
    options.failover?.on(
      'reload-leases',
      () => void this.#loadLeases().catch((error: unknown) => this.#fail('reloading leases', error)),
    );
  }

  async start(): Promise<void> {
    await this.refresh();
    await this.#loadLeases();
    // Changes made through this process are seen at once; others (other nodes on one PostgreSQL) by the timer.
    inventoryEvents.on('changed', this.#onInventoryChanged);
    this.#timer = setInterval(
      () => void this.refresh().catch((error: unknown) => this.#fail('refreshing networks', error)),
      this.#options.refreshMs ?? 10_000,
    );
    this.#timer.unref();
  }

  #fail(doing: string, error: unknown): void {
    this.#options.onError?.(new Error(`dhcp: ${doing} failed`, { cause: error }));
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#pending);
    inventoryEvents.off('changed', this.#onInventoryChanged);
  }

  #pending: NodeJS.Timeout | undefined;
  /** Debounced: an import of thousands of rows is one change. */
  readonly #onInventoryChanged = () => {
    clearTimeout(this.#pending);
    this.#pending = setTimeout(
      () => void this.refresh().catch((error: unknown) => this.#fail('refreshing networks', error)),
      50,
    );
  };

  /** Re-reads networks and reservations from the inventory. */
  async refresh(): Promise<void> {
    this.#refreshedAt = Date.now();
    const rows = await this.#options.db.selectFrom('networks').selectAll().execute();
    await this.#hosts.refresh();
    this.#reserved = new Set([...this.#hosts.hosts()].flatMap((h) => (h.ip === null ? [] : [toIpv4(h.ip)])));
    const reserved = () => this.#reserved;
    this.#networks = rows.map((row) => {
      let pool: LeasePool | undefined;
      if (row.dynamic_start && row.dynamic_end) {
        const key = `${row.id}:${row.dynamic_start}-${row.dynamic_end}`;
        pool = this.#pools.get(key);
        if (!pool) {
          pool = new LeasePool(
            { start: toIpv4(row.dynamic_start), end: toIpv4(row.dynamic_end) },
            (ip) => reserved().has(ip),
            { maxClients: this.#options.poolMaxClients },
          );
          this.#pools.set(key, pool);
        }
      }
      const cidr = parseCidr(row.cidr);
      if (!cidr) throw new RangeError(`network ${row.name}: bad CIDR ${row.cidr}`);
      return {
        id: row.id,
        name: row.name,
        cidr,
        gateway: row.gateway ? toIpv4(row.gateway) : null,
        dns: row.dns.map(toIpv4),
        domain: row.domain,
        leaseSeconds: row.lease_seconds,
        relays: row.relays.map(toIpv4),
        pool,
      };
    });
  }

  async #loadLeases(): Promise<void> {
    const now = Date.now();
    const leases = await this.#options.db
      .selectFrom('leases')
      .selectAll()
      .where('state', 'in', ['bound', 'declined'])
      .execute();
    for (const lease of leases) {
      const until = new Date(lease.expires_at).getTime();
      if (until <= now) continue;
      const network = this.#networks.find((n) => n.id === lease.network_id);
      network?.pool?.hold(
        toIpv4(lease.ip),
        lease.client_id ?? lease.mac,
        lease.state === 'bound' ? 'bound' : 'declined',
        until,
      );
    }
  }

  poolStats(): ({ network: string } & PoolStats)[] {
    const now = Date.now();
    return this.#networks.filter((n) => n.pool).map((n) => ({ network: n.name, ...n.pool!.stats(now) }));
  }

  /** The network of a relayed request is giaddr's; a direct one's is ours (the segment we listen on). */
  #networkFor(at: RequestAddresses): NetworkView | undefined {
    const anchor = at.giaddr !== UNSPECIFIED ? at.giaddr : this.#server;
    const network = this.#networks.find((n) => cidrContains(n.cidr, anchor));
    return network && this.#options.networks && !this.#options.networks.includes(network.name) ? undefined : network;
  }

  /**
   * The host as the store has it now; if the store does not answer, the copy refreshed every few
   * seconds (an OFFER needs no store: only an ACK waits for a durable lease).
   */
  async #host(mac: string): Promise<HostView | undefined> {
    try {
      const host = await this.#backend.hostByMac(mac);
      return host ? hostView(host) : undefined;
    } catch (error) {
      this.#fail('reading a host (answered from the last inventory copy)', error);
      return this.#copied(mac);
    }
  }

  /** The host of a MAC as of the last refresh (no store query). */
  #copied(mac: string): HostView | undefined {
    const host = this.#hosts.get(mac);
    return host ? hostView(host) : undefined;
  }

  /**
   * One request, in order: classify → network (refusing unlisted relays) → discovery → proxy or
   * failover gate → one function per message type. `from` is the datagram's source; an in-process
   * caller without one is trusted as its own relay.
   */
  async handle(
    request: DhcpPacket,
    context: { port: number; from?: { address: string } | undefined },
  ): Promise<DhcpReply | undefined> {
    const mac = clientMac(request);
    const key = clientKey(request);
    const type = messageType(request);
    if (!mac || !key || type === undefined) return undefined;
    // The edge: the request's addresses become numbers here, once.
    const at = requestAddresses(request);
    const source = context.from ? (parseIpv4(context.from.address) ?? UNSPECIFIED) : at.giaddr;
    const state = requestState(at);
    const client = classifyClient(request);
    const network = await this.#network(at);
    if (network && !this.#relayAllowed(at, network, source)) {
      this.stats.relayRefused += 1;
      return undefined;
    }
    // A network-booting machine's answer depends on its build state, which changes at any moment
    // (rebuild, built): read it fresh. Other clients only need their reservation, which changes
    // rarely: the copy refreshed every few seconds serves them without a store query per packet.
    let host = client.netboot ? await this.#host(mac) : this.#copied(mac);
    if (type === MessageType.Discover && client.netboot) host = await this.#discovered(at, mac, host, client);
    if (this.#options.mode === 'proxy') return this.#proxyAnswer(request, at, state, type, client, host, context.port);
    if (!this.#failoverServes(request, type, state)) return undefined;
    if (!network) {
      this.stats.noNetwork += 1;
      return undefined;
    }
    const reservation = host?.ip != null && host.networkId === network.id ? host.ip : undefined;
    // A reserved address belongs to the inventory's machine, known by its MAC: each stage of a
    // network boot (UEFI firmware, iPXE, the installer, the OS) may send a client identifier of its
    // own, and keyed by those, the firmware's lease would lock iPXE out of the machine's address.
    const owner = reservation !== undefined ? { key: mac, clientId: null } : { key, clientId: clientIdHex(request) };
    const ask: Ask = { request, at, state, ...owner, mac, network, client, host, reservation, now: Date.now() };
    switch (type) {
      case MessageType.Discover:
        return this.#onDiscover(ask);
      case MessageType.Request:
        return this.#onRequest(ask);
      case MessageType.Decline:
        return this.#onDecline(ask);
      case MessageType.Release:
        return this.#onRelease(ask);
      case MessageType.Inform:
        return this.#reply(ask, MessageType.Ack, UNSPECIFIED, { inform: true });
      default:
        return undefined;
    }
  }

  async #network(at: RequestAddresses): Promise<NetworkView | undefined> {
    const network = this.#networkFor(at);
    if (network || Date.now() - this.#refreshedAt <= 1000) return network;
    // A network added a moment ago: look again (at most once a second) rather than wait for the timer.
    await this.refresh();
    return this.#networkFor(at);
  }

  /**
   * Load balancing (RFC 3074) decides who answers a client looking for a server: DISCOVER, and
   * REQUEST in INIT-REBOOT; a REQUEST naming us, a renewal, a DECLINE or RELEASE is ours to take.
   */
  #failoverServes(request: DhcpPacket, type: MessageType, state: RequestState): boolean {
    const failover = this.#options.failover;
    const choosing = type === MessageType.Discover || (type === MessageType.Request && state === 'init-reboot');
    if (!failover || !choosing || failover.serves(request)) return true;
    this.stats.partnersClients += 1;
    return false;
  }

  /**
   * Relayed packets (giaddr set) are taken only from the network's relays: the datagram's source
   * must be one of `network.relays` (the address the relay sends from). A network with no relays
   * listed takes relayed packets only from a relay whose source is its giaddr (a router relaying
   * from its interface on that network): giaddr picks the network, so it then lies inside it.
   */
  #relayAllowed(at: RequestAddresses, network: NetworkView, source: Ipv4): boolean {
    if (at.giaddr === UNSPECIFIED) return true;
    return network.relays.length > 0 ? network.relays.includes(source) : source === at.giaddr;
  }

  async #discovered(
    at: RequestAddresses,
    mac: string,
    known: HostView | undefined,
    client: ReturnType<typeof classifyClient>,
  ): Promise<HostView | undefined> {
    let host = known;
    const relay = at.giaddr !== UNSPECIFIED ? formatIpv4(at.giaddr) : null;
    if (!host) {
      // Bounded: random MACs must not fill the inventory; the client is still answered.
      if (!this.#discovery.newHost()) return undefined;
      try {
        const registered = await registerDiscovered(this.#options.db, mac, relay ?? this.#options.serverId, 'dhcp');
        this.stats.discovered += 1;
        host = {
          id: registered.id,
          hostname: registered.hostname,
          ip: null,
          networkId: null,
          buildState: 'discovered',
        };
      } catch (error) {
        // The store is away or full: the machine is still offered an address, as an unknown one.
        this.#fail('registering a discovered machine', error);
        return undefined;
      }
    }
    // A known host's timeline is never thinned; a discovered one's (any MAC can be sent) is bounded.
    // A timeline row that cannot be written costs the machine nothing: its OFFER does not wait on it.
    if (host.buildState !== 'discovered' || this.#discovery.event(mac)) {
      const detail = {
        message: 'discover',
        firmware: client.firmware,
        ipxe: client.ipxe,
        httpBoot: client.httpBoot,
        relay,
      };
      const timeline = this.#options.timeline;
      await (
        timeline ? timeline.record(host.id, 'dhcp', detail) : recordEvent(this.#options.db, host.id, 'dhcp', detail)
      ).catch((error: unknown) => this.#fail('recording a DISCOVER on the timeline', error));
    }
    return host;
  }

  #onDiscover(ask: Ask): DhcpReply | undefined {
    const { at, key, network, reservation, now } = ask;
    const ip =
      reservation ??
      network.pool?.choose(key, now, at.requested, network.pool.part(this.#options.failover?.poolPart() ?? 'all'));
    if (ip === undefined) {
      this.stats.poolExhausted += 1;
      return undefined;
    }
    // (the pool keeps a longer binding of this client as it is: an offer never shortens a lease)
    if (reservation === undefined) network.pool!.hold(ip, key, 'offered', now + (this.#options.offerTtlMs ?? 30_000));
    return this.#reply(ask, MessageType.Offer, ip);
  }

  async #onRequest(ask: Ask): Promise<DhcpReply | undefined> {
    const { request, at, state, key, clientId, mac, network, host, reservation, now } = ask;
    const pool = network.pool;
    if (state === 'selecting' && at.server !== this.#server) {
      // The client chose another server's offer: ours is free again.
      const offered = pool?.heldBy(key, now);
      if (offered !== undefined && pool!.holder(offered, now)?.kind === 'offered') pool!.free(offered, key);
      return undefined;
    }
    const wanted = state === 'renewing' ? at.ciaddr : at.requested;
    if (
      state === 'init-reboot' &&
      wanted !== undefined &&
      reservation === undefined &&
      cidrContains(network.cidr, wanted)
    ) {
      // RFC 2131 §4.3.2: with no record of this client, stay silent (another server may have one).
      const holder = pool?.holder(wanted, now);
      if (!holder && pool?.heldBy(key, now) === undefined) {
        this.stats.silentInitReboot += 1;
        return undefined;
      }
    }
    const ok =
      wanted !== undefined &&
      (reservation !== undefined ? wanted === reservation : !!pool?.availableTo(wanted, key, now));
    if (!ok) {
      this.stats.naks += 1;
      return this.#nak(ask, wanted === undefined ? 'no address requested' : `${formatIpv4(wanted)} is not yours`);
    }
    const leaseSeconds = this.#leaseSeconds(network);
    const expires = now + leaseSeconds * 1000;
    if (reservation === undefined) pool!.hold(wanted, key, 'bound', expires);
    // Durable first: the ACK leaves only once the lease is committed — and only if the store agrees it is this client's.
    const written = await this.#options.writer.write({
      ip: formatIpv4(wanted),
      networkId: network.id,
      mac,
      clientId,
      hostname: host?.hostname ?? hostName(request),
      state: 'bound',
      expiresAt: new Date(expires),
    });
    if (!written) {
      await this.#learnOwner(network, wanted, key);
      this.stats.storeRefused += 1;
      this.stats.naks += 1;
      return this.#nak(ask, `${formatIpv4(wanted)} is bound to another client`);
    }
    return this.#reply(ask, MessageType.Ack, wanted, { leaseSeconds });
  }

  /** RFC 2131 §4.3.3: honoured only from the address's holder; the address then sits out its probation. */
  async #onDecline({ at, key, clientId, mac, network, now }: Ask): Promise<undefined> {
    const ip = at.requested;
    const holder = ip === undefined ? undefined : network.pool?.holder(ip, now);
    if (ip === undefined || !holder || holder.mac !== key || holder.kind === 'declined') {
      this.stats.declinesIgnored += 1;
      return undefined;
    }
    const until = now + (this.#options.declineProbationMs ?? DECLINE_PROBATION_MS);
    network.pool!.hold(ip, key, 'declined', until);
    await this.#options.writer.write({
      ip: formatIpv4(ip),
      networkId: network.id,
      mac,
      clientId,
      hostname: null,
      state: 'declined',
      expiresAt: new Date(until),
    });
    return undefined;
  }

  async #onRelease({ at, key, clientId, mac, network, reservation, now }: Ask): Promise<undefined> {
    const ip = at.ciaddr;
    if (ip !== UNSPECIFIED && (ip === reservation || network.pool?.holder(ip, now)?.mac === key)) {
      network.pool?.free(ip, key);
      await this.#options.writer.write({
        ip: formatIpv4(ip),
        networkId: network.id,
        mac,
        clientId,
        hostname: null,
        state: 'released',
        expiresAt: new Date(now),
      });
    }
    return undefined;
  }

  /** The store refused our write: someone else holds the address there (the partner, or a stale memory). */
  async #learnOwner(network: NetworkView, ip: Ipv4, key: string): Promise<void> {
    network.pool?.free(ip, key);
    const row = await this.#options.db
      .selectFrom('leases')
      .selectAll()
      .where('ip', '=', formatIpv4(ip))
      .executeTakeFirst();
    if (!row || !network.pool) return;
    const until = new Date(row.expires_at).getTime();
    if (until > Date.now())
      network.pool.hold(ip, row.client_id ?? row.mac, row.state === 'declined' ? 'declined' : 'bound', until);
  }

  #leaseSeconds(network: NetworkView): number {
    return Math.min(network.leaseSeconds, this.#options.failover?.maxLeaseSeconds() ?? Infinity);
  }

  /** Options 66/67 and siaddr (and option 60 for HTTP boot) when this client is told to boot something. */
  #withBoot(packet: DhcpPacket, client: ReturnType<typeof classifyClient>, host: HostView | undefined): void {
    if (!client.netboot) return; // (dhcpBootAnswer's first rule, without building the URLs)
    const answer = dhcpBootAnswer(client, host, this.#bootUrls);
    if (!answer.bootFile) return;
    packet.siaddr = formatIpv4(this.#nextServer);
    packet.options.set(OptionCode.TftpServerName, text.encode(packet.siaddr));
    packet.options.set(OptionCode.BootFileName, text.encode(answer.bootFile));
    if (Buffer.byteLength(answer.bootFile) <= 127) packet.file = answer.bootFile;
    if (answer.vendorClass) packet.options.set(OptionCode.VendorClass, text.encode(answer.vendorClass));
  }

  #reply(
    { request, network, client, host }: Ask,
    type: MessageType,
    yiaddr: Ipv4,
    flags: { inform?: boolean; leaseSeconds?: number } = {},
  ): DhcpReply {
    const packet = replyTo(request, type, this.#server, yiaddr);
    const options = packet.options;
    options.set(OptionCode.SubnetMask, ipv4.encode(maskOf(network.cidr.prefix)));
    options.set(OptionCode.BroadcastAddress, ipv4.encode(broadcastOf(network.cidr)));
    if (network.gateway !== null) options.set(OptionCode.Router, ipv4List.encode([network.gateway]));
    if (network.dns.length) options.set(OptionCode.DomainNameServer, ipv4List.encode(network.dns));
    if (network.domain) options.set(OptionCode.DomainName, text.encode(network.domain));
    if (!flags.inform) {
      const seconds = flags.leaseSeconds ?? this.#leaseSeconds(network);
      options.set(OptionCode.LeaseTime, u32.encode(seconds));
      options.set(OptionCode.RenewalTime, u32.encode(Math.floor(seconds / 2)));
      options.set(OptionCode.RebindingTime, u32.encode(Math.floor(seconds * 0.875)));
    }
    if (host && host.buildState !== 'discovered')
      options.set(OptionCode.HostName, text.encode(host.hostname.split('.')[0]!));
    this.#withBoot(packet, client, host);
    return { packet: inRequestedOrder(packet, request), to: replyDestination(request, type) };
  }

  #nak({ request }: Ask, message: string): DhcpReply {
    const packet = replyTo(request, MessageType.Nak, this.#server);
    packet.options.set(OptionCode.Message, text.encode(message));
    return { packet, to: replyDestination(request, MessageType.Nak) };
  }

  /** proxyDHCP: boot information for PXE clients only, no address (PXE spec; see PROTOCOLS.md). */
  #proxyAnswer(
    request: DhcpPacket,
    at: RequestAddresses,
    state: RequestState,
    type: MessageType,
    client: ReturnType<typeof classifyClient>,
    host: HostView | undefined,
    port: number,
  ): DhcpReply | undefined {
    if (!client.netboot) return undefined;
    // A REQUEST for another server (option 54), or an INIT-REBOOT, is the address server's: a proxy is not selected (§4.3.2).
    if (
      type === MessageType.Request &&
      (state === 'init-reboot' || (state === 'selecting' && at.server !== this.#server))
    ) {
      this.stats.proxyNotAddressed += 1;
      return undefined;
    }
    const replyType =
      type === MessageType.Discover && port === 67
        ? MessageType.Offer
        : type === MessageType.Request
          ? MessageType.Ack
          : undefined;
    if (replyType === undefined) return undefined;
    const packet = replyTo(request, replyType, this.#server);
    packet.options.set(OptionCode.VendorClass, text.encode('PXEClient'));
    packet.options.set(OptionCode.VendorSpecific, pxeVendorOptions());
    this.#withBoot(packet, client, host);
    if (!packet.options.has(OptionCode.BootFileName)) return undefined;
    packet.ciaddr = request.ciaddr;
    return { packet: inRequestedOrder(packet, request), to: replyDestination(request, replyType) };
  }
}
