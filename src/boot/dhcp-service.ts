/**
 * The DHCP role's policy: which network a request belongs to (giaddr of its relay, or our own
 * segment), which address a client gets (its reservation from the inventory, else the network's
 * dynamic pool), what it is told to boot, and leases made durable before the ACK is sent.
 * In proxy mode it gives no addresses at all, only boot information to PXE clients.
 */
import type { Kysely } from 'kysely';
import { cidrContains, formatIpv4, maskOf, broadcastOf, parseCidr, parseIpv4, type Cidr } from '../fleet/ipv4.ts';
import { LeasePool } from '../protocols/dhcp4/lease-pool.ts';
import { ipv4, ipv4List, text, u32 } from '../protocols/dhcp4/option-codecs.ts';
import { OptionCode, type DhcpOptions } from '../protocols/dhcp4/options.ts';
import { clientMac, messageType, MessageType, type DhcpPacket } from '../protocols/dhcp4/packet.ts';
import { clientIdHex, clientKey, hostName, requestedIp, requestState, serverId } from '../protocols/dhcp4/accessors.ts';
import { inRequestedOrder, replyTo } from '../protocols/dhcp4/build.ts';
import { pxeVendorOptions } from '../protocols/dhcp4/pxe.ts';
import { replyDestination } from '../protocols/dhcp4/reply-address.ts';
import type { DhcpReply } from '../protocols/dhcp4/server.ts';
import type { LeaseWriter } from '../store/lease-writer.ts';
import type { Database } from '../store/schema.ts';
import { inventoryEvents } from '../store/tx.ts';
import { recordEvent, registerDiscovered } from './builds.ts';
import { classifyClient, dhcpBootAnswer } from './classify.ts';
import { DiscoveryLimiter } from './rate-limit.ts';
import { bootUrls } from './urls.ts';
import { HTTP_BOOT_IPXE_EFI } from './firmware-http.ts';
import type { FailoverMachine } from './dhcp-failover.ts';

export interface DhcpServiceOptions {
  readonly db: Kysely<Database>;
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
  readonly refreshMs?: number;
  /** Bounds the discovered hosts and timeline events DISCOVERs create (default: its own, DEFAULT_DISCOVERY_LIMITS). */
  readonly discovery?: DiscoveryLimiter | undefined;
  /** Store errors of background work (refresh, lease reload), with their cause; default: none. */
  readonly onError?: ((error: unknown) => void) | undefined;
  /** One of a failover pair: which clients and which half of each pool are this server's. */
  readonly failover?: FailoverMachine | undefined;
  /** A distributed site's boot node serves only these networks (by name); default: all. */
  readonly networks?: readonly string[] | undefined;
}

interface NetworkView {
  readonly id: number;
  readonly name: string;
  readonly cidr: Cidr;
  readonly gateway: string | null;
  readonly dns: string[];
  readonly domain: string;
  readonly leaseSeconds: number;
  /** Source addresses relayed packets for this network may come from. */
  readonly relays: readonly string[];
  readonly pool: LeasePool | undefined;
}

/** One request on its way through the handler, its fields read once. */
interface Ask {
  readonly request: DhcpPacket;
  /** The lease key: client identifier, else MAC — the MAC for a reserved address (see handle). */
  readonly key: string;
  /** The client identifier stored with its lease (none for a reserved address). */
  readonly clientId: string | null;
  readonly mac: string;
  readonly network: NetworkView;
  readonly client: ReturnType<typeof classifyClient>;
  readonly host: HostView | undefined;
  readonly reservation: number | undefined;
  readonly now: number;
}

export const DECLINE_PROBATION_MS = 86_400_000;

interface HostView {
  readonly id: number;
  readonly hostname: string;
  readonly ip: string | null;
  readonly networkId: number | null;
  readonly buildState: string;
}

export class DhcpService {
  readonly #options: DhcpServiceOptions;
  #networks: NetworkView[] = [];
  /** Pools survive a refresh of the network list as long as the range is unchanged. */
  readonly #pools = new Map<string, LeasePool>();
  #reserved = new Set<number>();
  /** Hosts by MAC as of the last refresh, for clients that are not network-booting (see handle). */
  #hostsByMac = new Map<string, HostView>();
  #timer: NodeJS.Timeout | undefined;
  #refreshedAt = 0;
  readonly #discovery: DiscoveryLimiter;
  readonly stats = { noNetwork: 0, poolExhausted: 0, naks: 0, discovered: 0, partnersClients: 0, relayRefused: 0, storeRefused: 0, declinesIgnored: 0, silentInitReboot: 0, proxyNotAddressed: 0 };

  constructor(options: DhcpServiceOptions) {
    this.#options = options;
    this.#discovery = options.discovery ?? new DiscoveryLimiter();
    // Entering partner-down, or leaving recover: the partner's leases must be known before serving its half.
    options.failover?.on('reload-leases', () => void this.#loadLeases().catch((error: unknown) => this.#fail('reloading leases', error)));
  }

  async start(): Promise<void> {
    await this.refresh();
    await this.#loadLeases();
    // Changes made through this process are seen at once; others (other nodes on one PostgreSQL) by the timer.
    inventoryEvents.on('changed', this.#onInventoryChanged);
    this.#timer = setInterval(() => void this.refresh().catch((error: unknown) => this.#fail('refreshing networks', error)), this.#options.refreshMs ?? 10_000);
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
    this.#pending = setTimeout(() => void this.refresh().catch((error: unknown) => this.#fail('refreshing networks', error)), 50);
  };

  /** Re-reads networks and reservations from the inventory. */
  async refresh(): Promise<void> {
    this.#refreshedAt = Date.now();
    const rows = await this.#options.db.selectFrom('networks').selectAll().execute();
    const hosts = await this.#options.db
      .selectFrom('host_macs')
      .innerJoin('hosts', 'hosts.id', 'host_macs.host_id')
      .select(['host_macs.mac', 'hosts.id', 'hosts.hostname', 'hosts.ip', 'hosts.network_id', 'hosts.build_state'])
      .execute();
    this.#hostsByMac = new Map(hosts.map((h) => [h.mac, { id: h.id, hostname: h.hostname, ip: h.ip, networkId: h.network_id, buildState: h.build_state }]));
    this.#reserved = new Set(hosts.filter((h) => h.ip).map((h) => parseIpv4(h.ip!)!));
    const reserved = () => this.#reserved;
    this.#networks = rows.map((row) => {
      let pool: LeasePool | undefined;
      if (row.dynamic_start && row.dynamic_end) {
        const key = `${row.id}:${row.dynamic_start}-${row.dynamic_end}`;
        pool = this.#pools.get(key);
        if (!pool) {
          pool = new LeasePool({ start: parseIpv4(row.dynamic_start)!, end: parseIpv4(row.dynamic_end)! }, (ip) => reserved().has(ip));
          this.#pools.set(key, pool);
        }
      }
      return { id: row.id, name: row.name, cidr: parseCidr(row.cidr)!, gateway: row.gateway, dns: row.dns, domain: row.domain, leaseSeconds: row.lease_seconds, relays: row.relays, pool };
    });
  }

  async #loadLeases(): Promise<void> {
    const now = Date.now();
    const leases = await this.#options.db.selectFrom('leases').selectAll().where('state', 'in', ['bound', 'declined']).execute();
    for (const lease of leases) {
      const until = new Date(lease.expires_at).getTime();
      if (until <= now) continue;
      const network = this.#networks.find((n) => n.id === lease.network_id);
      network?.pool?.hold(parseIpv4(lease.ip)!, lease.client_id ?? lease.mac, lease.state === 'bound' ? 'bound' : 'declined', until);
    }
  }

  poolStats(): { network: string; size: number; bound: number; offered: number; declined: number; free: number }[] {
    const now = Date.now();
    return this.#networks.filter((n) => n.pool).map((n) => ({ network: n.name, ...n.pool!.stats(now) }));
  }

  #networkFor(request: DhcpPacket): NetworkView | undefined {
    const anchor = parseIpv4(request.giaddr !== '0.0.0.0' ? request.giaddr : this.#options.serverId);
    const network = anchor === undefined ? undefined : this.#networks.find((n) => cidrContains(n.cidr, anchor));
    return network && this.#options.networks && !this.#options.networks.includes(network.name) ? undefined : network;
  }

  async #host(mac: string): Promise<HostView | undefined> {
    const row = await this.#options.db
      .selectFrom('host_macs')
      .innerJoin('hosts', 'hosts.id', 'host_macs.host_id')
      .select(['hosts.id', 'hosts.hostname', 'hosts.ip', 'hosts.network_id', 'hosts.build_state'])
      .where('host_macs.mac', '=', mac)
      .executeTakeFirst();
    return row ? { id: row.id, hostname: row.hostname, ip: row.ip, networkId: row.network_id, buildState: row.build_state } : undefined;
  }

  /**
   * One request, in order: classify → network (refusing unlisted relays) → discovery → proxy or
   * failover gate → one function per message type. `from` is the datagram's source; an in-process
   * caller without one is trusted as its own relay.
   */
  async handle(request: DhcpPacket, context: { port: number; from?: { address: string } | undefined }): Promise<DhcpReply | undefined> {
    const mac = clientMac(request);
    const key = clientKey(request);
    const type = messageType(request);
    if (!mac || !key || type === undefined) return undefined;
    const client = classifyClient(request);
    // A network-booting machine's answer depends on its build state, which changes at any moment
    // (rebuild, built): read it fresh. Other clients only need their reservation, which changes
    // rarely: the copy refreshed every few seconds serves them without a store query per packet.
    let network = this.#networkFor(request);
    // A network added a moment ago: look again (at most once a second) rather than wait for the timer.
    if (!network && Date.now() - this.#refreshedAt > 1000) {
      await this.refresh();
      network = this.#networkFor(request);
    }
    if (network && !this.#relayAllowed(request, network, context.from?.address ?? request.giaddr)) {
      this.stats.relayRefused += 1;
      return undefined;
    }
    let host = client.netboot ? await this.#host(mac) : this.#hostsByMac.get(mac);
    if (type === MessageType.Discover && client.netboot) host = await this.#discovered(request, mac, host, client);
    if (this.#options.mode === 'proxy') return this.#proxyAnswer(request, type, client, host, context.port);
    const failover = this.#options.failover;
    // Load balancing (RFC 3074) decides who answers a client looking for a server: DISCOVER, and
    // REQUEST in INIT-REBOOT; a REQUEST naming us, a renewal, a DECLINE or RELEASE is ours to take.
    const choosing = type === MessageType.Discover || (type === MessageType.Request && requestState(request) === 'init-reboot');
    if (failover && choosing && !failover.serves(request)) {
      this.stats.partnersClients += 1;
      return undefined;
    }
    if (!network) {
      this.stats.noNetwork += 1;
      return undefined;
    }
    const reservation = host?.ip && host.networkId === network.id ? parseIpv4(host.ip)! : undefined;
    // A reserved address belongs to the inventory's machine, known by its MAC: each stage of a
    // network boot (UEFI firmware, iPXE, the installer, the OS) may send a client identifier of its
    // own, and keyed by those, the firmware's lease would lock iPXE out of the machine's address.
    const owner = reservation !== undefined ? { key: mac, clientId: null } : { key, clientId: clientIdHex(request) };
    const ask: Ask = { request, ...owner, mac, network, client, host, reservation, now: Date.now() };
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
        return this.#reply(request, MessageType.Ack, network, '0.0.0.0', client, host, { inform: true });
      default:
        return undefined;
    }
  }

  /**
   * Relayed packets (giaddr set) are taken only from the network's relays: the datagram's source
   * must be one of `network.relays` (the address the relay sends from). A network with no relays
   * listed takes relayed packets only from a relay whose source is its giaddr (a router relaying
   * from its interface on that network): giaddr picks the network, so it then lies inside it.
   */
  #relayAllowed(request: DhcpPacket, network: NetworkView, source: string): boolean {
    if (request.giaddr === '0.0.0.0') return true;
    return network.relays.length > 0 ? network.relays.includes(source) : source === request.giaddr;
  }

  async #discovered(request: DhcpPacket, mac: string, known: HostView | undefined, client: ReturnType<typeof classifyClient>): Promise<HostView | undefined> {
    let host = known;
    if (!host) {
      // Bounded: random MACs must not fill the inventory; the client is still answered.
      if (!this.#discovery.newHost()) return undefined;
      const ip = request.giaddr !== '0.0.0.0' ? request.giaddr : this.#options.serverId;
      const registered = await registerDiscovered(this.#options.db, mac, ip, 'dhcp');
      this.stats.discovered += 1;
      host = { id: registered.id, hostname: registered.hostname, ip: null, networkId: null, buildState: 'discovered' };
    }
    // A known host's timeline is never thinned; a discovered one's (any MAC can be sent) is bounded.
    if (host.buildState !== 'discovered' || this.#discovery.event(mac)) await recordEvent(this.#options.db, host.id, 'dhcp', { message: 'discover', firmware: client.firmware, ipxe: client.ipxe, relay: request.giaddr !== '0.0.0.0' ? request.giaddr : null });
    return host;
  }

  #onDiscover({ request, key, network, client, host, reservation, now }: Ask): DhcpReply | undefined {
    const requested = parseIpv4(requestedIp(request) ?? '');
    const ip = reservation ?? network.pool?.choose(key, now, requested, network.pool.part(this.#options.failover?.poolPart() ?? 'all'));
    if (ip === undefined) {
      this.stats.poolExhausted += 1;
      return undefined;
    }
    // (the pool keeps a longer binding of this client as it is: an offer never shortens a lease)
    if (reservation === undefined) network.pool!.hold(ip, key, 'offered', now + (this.#options.offerTtlMs ?? 30_000));
    return this.#reply(request, MessageType.Offer, network, formatIpv4(ip), client, host);
  }

  async #onRequest({ request, key, clientId, mac, network, client, host, reservation, now }: Ask): Promise<DhcpReply | undefined> {
    const pool = network.pool;
    const state = requestState(request);
    if (state === 'selecting' && serverId(request) !== this.#options.serverId) {
      // The client chose another server's offer: ours is free again.
      const offered = pool?.heldBy(key, now);
      if (offered !== undefined && pool!.holder(offered, now)?.kind === 'offered') pool!.free(offered, key);
      return undefined;
    }
    const wanted = parseIpv4(state === 'renewing' ? request.ciaddr : requestedIp(request) ?? '');
    if (state === 'init-reboot' && wanted !== undefined && reservation === undefined && cidrContains(network.cidr, wanted)) {
      // RFC 2131 §4.3.2: with no record of this client, stay silent (another server may have one).
      const holder = pool?.holder(wanted, now);
      if (!holder && pool?.heldBy(key, now) === undefined) {
        this.stats.silentInitReboot += 1;
        return undefined;
      }
    }
    const ok = wanted !== undefined && (reservation !== undefined ? wanted === reservation : !!pool?.availableTo(wanted, key, now));
    if (!ok) {
      this.stats.naks += 1;
      return this.#nak(request, network, wanted === undefined ? 'no address requested' : `${formatIpv4(wanted)} is not yours`);
    }
    const leaseSeconds = Math.min(network.leaseSeconds, this.#options.failover?.maxLeaseSeconds() ?? Infinity);
    const expires = now + leaseSeconds * 1000;
    if (reservation === undefined) pool!.hold(wanted, key, 'bound', expires);
    // Durable first: the ACK leaves only once the lease is committed — and only if the store agrees it is this client's.
    const written = await this.#options.writer.write({ ip: formatIpv4(wanted), networkId: network.id, mac, clientId, hostname: host?.hostname ?? hostName(request), state: 'bound', expiresAt: new Date(expires) });
    if (!written) {
      await this.#learnOwner(network, wanted, key);
      this.stats.storeRefused += 1;
      this.stats.naks += 1;
      return this.#nak(request, network, `${formatIpv4(wanted)} is bound to another client`);
    }
    return this.#reply(request, MessageType.Ack, network, formatIpv4(wanted), client, host, { leaseSeconds });
  }

  /** RFC 2131 §4.3.3: honoured only from the address's holder; the address then sits out its probation. */
  async #onDecline({ request, key, clientId, mac, network, now }: Ask): Promise<undefined> {
    const ip = parseIpv4(requestedIp(request) ?? '');
    const holder = ip === undefined ? undefined : network.pool?.holder(ip, now);
    if (ip === undefined || !holder || holder.mac !== key || holder.kind === 'declined') {
      this.stats.declinesIgnored += 1;
      return undefined;
    }
    const until = now + (this.#options.declineProbationMs ?? DECLINE_PROBATION_MS);
    network.pool!.hold(ip, key, 'declined', until);
    await this.#options.writer.write({ ip: formatIpv4(ip), networkId: network.id, mac, clientId, hostname: null, state: 'declined', expiresAt: new Date(until) });
    return undefined;
  }

  async #onRelease({ request, key, clientId, mac, network, reservation, now }: Ask): Promise<undefined> {
    const ip = parseIpv4(request.ciaddr);
    if (ip !== undefined && ip !== 0 && (ip === reservation || network.pool?.holder(ip, now)?.mac === key)) {
      network.pool?.free(ip, key);
      await this.#options.writer.write({ ip: request.ciaddr, networkId: network.id, mac, clientId, hostname: null, state: 'released', expiresAt: new Date(now) });
    }
    return undefined;
  }

  /** The store refused our write: someone else holds the address there (the partner, or a stale memory). */
  async #learnOwner(network: NetworkView, ip: number, key: string): Promise<void> {
    network.pool?.free(ip, key);
    const row = await this.#options.db.selectFrom('leases').selectAll().where('ip', '=', formatIpv4(ip)).executeTakeFirst();
    if (!row || !network.pool) return;
    const until = new Date(row.expires_at).getTime();
    if (until > Date.now()) network.pool.hold(ip, row.client_id ?? row.mac, row.state === 'declined' ? 'declined' : 'bound', until);
  }

  #base(request: DhcpPacket, type: MessageType, yiaddr: string): { packet: DhcpPacket; options: DhcpOptions } {
    const packet = replyTo(request, type, this.#options.serverId, yiaddr);
    return { packet, options: packet.options };
  }

  #withBoot(packet: DhcpPacket, options: DhcpOptions, client: ReturnType<typeof classifyClient>, host: HostView | undefined): void {
    const urls = bootUrls(this.#options.bootBaseUrl);
    const answer = dhcpBootAnswer(client, host, { script: urls.script(), httpIpxeEfi: `${this.#options.bootBaseUrl.replace(/\/+$/, '')}${HTTP_BOOT_IPXE_EFI}` });
    if (!answer.bootFile) return;
    const nextServer = this.#options.nextServer ?? this.#options.serverId;
    packet.siaddr = nextServer;
    options.set(OptionCode.TftpServerName, text.encode(nextServer));
    options.set(OptionCode.BootFileName, text.encode(answer.bootFile));
    if (Buffer.byteLength(answer.bootFile) <= 127) packet.file = answer.bootFile;
    if (answer.vendorClass) options.set(OptionCode.VendorClass, text.encode(answer.vendorClass));
  }

  #reply(request: DhcpPacket, type: MessageType, network: NetworkView, yiaddr: string, client: ReturnType<typeof classifyClient>, host: HostView | undefined, flags: { inform?: boolean; leaseSeconds?: number } = {}): DhcpReply {
    const { packet, options } = this.#base(request, type, yiaddr);
    options.set(OptionCode.SubnetMask, ipv4.encode(formatIpv4(maskOf(network.cidr.prefix))));
    options.set(OptionCode.BroadcastAddress, ipv4.encode(formatIpv4(broadcastOf(network.cidr))));
    if (network.gateway) options.set(OptionCode.Router, ipv4List.encode([network.gateway]));
    if (network.dns.length) options.set(OptionCode.DomainNameServer, ipv4List.encode(network.dns));
    if (network.domain) options.set(OptionCode.DomainName, text.encode(network.domain));
    if (!flags.inform) {
      const seconds = flags.leaseSeconds ?? Math.min(network.leaseSeconds, this.#options.failover?.maxLeaseSeconds() ?? Infinity);
      options.set(OptionCode.LeaseTime, u32.encode(seconds));
      options.set(OptionCode.RenewalTime, u32.encode(Math.floor(seconds / 2)));
      options.set(OptionCode.RebindingTime, u32.encode(Math.floor(seconds * 0.875)));
    }
    if (host && host.buildState !== 'discovered') options.set(OptionCode.HostName, text.encode(host.hostname.split('.')[0]!));
    this.#withBoot(packet, options, client, host);
    return { packet: inRequestedOrder(packet, request), to: replyDestination(request, type) };
  }

  #nak(request: DhcpPacket, _network: NetworkView, message: string): DhcpReply {
    const { packet, options } = this.#base(request, MessageType.Nak, '0.0.0.0');
    options.set(OptionCode.Message, text.encode(message));
    return { packet, to: replyDestination(request, MessageType.Nak) };
  }

  /** proxyDHCP: boot information for PXE clients only, no address (PXE spec; see PROTOCOLS.md). */
  #proxyAnswer(request: DhcpPacket, type: MessageType, client: ReturnType<typeof classifyClient>, host: HostView | undefined, port: number): DhcpReply | undefined {
    if (!client.netboot) return undefined;
    // A REQUEST for another server (option 54), or an INIT-REBOOT, is the address server's: a proxy is not selected (§4.3.2).
    if (type === MessageType.Request && (requestState(request) === 'init-reboot' || (requestState(request) === 'selecting' && serverId(request) !== this.#options.serverId))) {
      this.stats.proxyNotAddressed += 1;
      return undefined;
    }
    const replyType = type === MessageType.Discover && port === 67 ? MessageType.Offer : type === MessageType.Request ? MessageType.Ack : undefined;
    if (replyType === undefined) return undefined;
    const { packet, options } = this.#base(request, replyType, '0.0.0.0');
    options.set(OptionCode.VendorClass, text.encode('PXEClient'));
    options.set(OptionCode.VendorSpecific, pxeVendorOptions());
    this.#withBoot(packet, options, client, host);
    if (!options.has(OptionCode.BootFileName)) return undefined;
    packet.ciaddr = request.ciaddr;
    return { packet: inRequestedOrder(packet, request), to: replyDestination(request, replyType) };
  }
}
