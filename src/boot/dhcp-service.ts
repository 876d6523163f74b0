/**
 * The DHCP role's policy: which network a request belongs to (giaddr of its relay, or our own
 * segment), which address a client gets (its reservation from the inventory, else the network's
 * dynamic pool), what it is told to boot, and leases made durable before the ACK is sent.
 * In proxy mode it gives no addresses at all, only boot information to PXE clients.
 */
import type { Kysely } from 'kysely';
import { cidrContains, formatIpv4, maskOf, broadcastOf, parseCidr, parseIpv4, type Cidr } from '../fleet/ipv4.ts';
import { LeasePool } from '../protocols/dhcp4/lease-pool.ts';
import { ipv4, ipv4List, subOptions, text, u32 } from '../protocols/dhcp4/option-codecs.ts';
import { DhcpOptions, OptionCode } from '../protocols/dhcp4/options.ts';
import { BOOTREPLY, clientMac, messageType, MessageType, type DhcpPacket } from '../protocols/dhcp4/packet.ts';
import { replyDestination } from '../protocols/dhcp4/reply-address.ts';
import type { DhcpReply } from '../protocols/dhcp4/server.ts';
import type { LeaseWriter } from '../store/lease-writer.ts';
import type { Database } from '../store/schema.ts';
import { inventoryEvents } from '../store/tx.ts';
import { recordEvent, registerDiscovered } from './builds.ts';
import { classifyClient, dhcpBootAnswer } from './classify.ts';
import { bootUrls } from './urls.ts';
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
  readonly declineMs?: number;
  readonly refreshMs?: number;
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
  readonly pool: LeasePool | undefined;
}

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
  readonly stats = { noNetwork: 0, poolExhausted: 0, naks: 0, discovered: 0, partnersClients: 0 };

  constructor(options: DhcpServiceOptions) {
    this.#options = options;
    // Entering partner-down, or leaving recover: the partner's leases must be known before serving its half.
    options.failover?.on('reload-leases', () => void this.#loadLeases().catch(() => {}));
  }

  async start(): Promise<void> {
    await this.refresh();
    await this.#loadLeases();
    // Changes made through this process are seen at once; others (other nodes on one PostgreSQL) by the timer.
    inventoryEvents.on('changed', this.#onInventoryChanged);
    this.#timer = setInterval(() => void this.refresh().catch(() => {}), this.#options.refreshMs ?? 10_000);
    this.#timer.unref();
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
    this.#pending = setTimeout(() => void this.refresh().catch(() => {}), 50);
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
      return { id: row.id, name: row.name, cidr: parseCidr(row.cidr)!, gateway: row.gateway, dns: row.dns, domain: row.domain, leaseSeconds: row.lease_seconds, pool };
    });
  }

  async #loadLeases(): Promise<void> {
    const now = Date.now();
    const leases = await this.#options.db.selectFrom('leases').selectAll().where('state', 'in', ['bound', 'declined']).execute();
    for (const lease of leases) {
      const until = new Date(lease.expires_at).getTime();
      if (until <= now) continue;
      const network = this.#networks.find((n) => n.id === lease.network_id);
      network?.pool?.hold(parseIpv4(lease.ip)!, lease.mac, lease.state === 'bound' ? 'bound' : 'declined', until);
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

  async handle(request: DhcpPacket, context: { port: number }): Promise<DhcpReply | undefined> {
    const mac = clientMac(request);
    const type = messageType(request);
    if (!mac || type === undefined) return undefined;
    const client = classifyClient(request);
    // A network-booting machine's answer depends on its build state, which changes at any moment
    // (rebuild, built): read it fresh. Other clients only need their reservation, which changes
    // rarely: the copy refreshed every few seconds serves them without a store query per packet.
    let host = client.netboot ? await this.#host(mac) : this.#hostsByMac.get(mac);
    let network = this.#networkFor(request);
    // A network added a moment ago: look again (at most once a second) rather than wait for the timer.
    if (!network && Date.now() - this.#refreshedAt > 1000) {
      await this.refresh();
      network = this.#networkFor(request);
    }
    if (type === MessageType.Discover && client.netboot) {
      if (!host) {
        const ip = request.giaddr !== '0.0.0.0' ? request.giaddr : this.#options.serverId;
        const registered = await registerDiscovered(this.#options.db, mac, ip, 'dhcp');
        this.stats.discovered += 1;
        host = { id: registered.id, hostname: registered.hostname, ip: null, networkId: null, buildState: 'discovered' };
      }
      await recordEvent(this.#options.db, host.id, 'dhcp', { message: 'discover', firmware: client.firmware, ipxe: client.ipxe, relay: request.giaddr !== '0.0.0.0' ? request.giaddr : null });
    }
    if (this.#options.mode === 'proxy') return this.#proxyAnswer(request, type, client, host, context.port);
    const failover = this.#options.failover;
    // Load balancing (RFC 3074) decides who answers a client looking for a server: DISCOVER, and
    // REQUEST in INIT-REBOOT; a REQUEST naming us, a renewal, a DECLINE or RELEASE is ours to take.
    const choosing = type === MessageType.Discover || (type === MessageType.Request && request.ciaddr === '0.0.0.0' && !request.options.has(OptionCode.ServerId));
    if (failover && choosing && !failover.serves(request)) {
      this.stats.partnersClients += 1;
      return undefined;
    }
    if (!network) {
      this.stats.noNetwork += 1;
      return undefined;
    }
    const now = Date.now();
    const reservation = host?.ip && host.networkId === network.id ? parseIpv4(host.ip)! : undefined;
    switch (type) {
      case MessageType.Discover: {
        const requested = optionIp(request, OptionCode.RequestedIp);
        const ip = reservation ?? network.pool?.choose(mac, now, requested, network.pool.part(failover?.poolPart() ?? 'all'));
        if (ip === undefined) {
          this.stats.poolExhausted += 1;
          return undefined;
        }
        if (reservation === undefined) network.pool!.hold(ip, mac, 'offered', now + (this.#options.offerTtlMs ?? 30_000));
        return this.#reply(request, MessageType.Offer, network, formatIpv4(ip), client, host);
      }
      case MessageType.Request: {
        const serverId = optionIp(request, OptionCode.ServerId);
        if (serverId !== undefined && formatIpv4(serverId) !== this.#options.serverId) {
          // The client chose another server's offer: ours is free again.
          const offered = network.pool?.heldBy(mac, now);
          if (offered !== undefined && network.pool!.holder(offered, now)?.kind === 'offered') network.pool!.free(offered, mac);
          return undefined;
        }
        const wanted = request.ciaddr !== '0.0.0.0' ? parseIpv4(request.ciaddr) : optionIp(request, OptionCode.RequestedIp);
        const ok = wanted !== undefined && (reservation !== undefined ? wanted === reservation : !!network.pool?.availableTo(wanted, mac, now));
        if (!ok) {
          this.stats.naks += 1;
          return this.#nak(request, network, wanted === undefined ? 'no address requested' : `${formatIpv4(wanted)} is not yours`);
        }
        const leaseSeconds = Math.min(network.leaseSeconds, failover?.maxLeaseSeconds() ?? Infinity);
        const expires = now + leaseSeconds * 1000;
        if (reservation === undefined) network.pool!.hold(wanted, mac, 'bound', expires);
        // Durable first: the ACK leaves only once the lease is committed.
        await this.#options.writer.write({ ip: formatIpv4(wanted), networkId: network.id, mac, clientId: optionHex(request, OptionCode.ClientId), hostname: host?.hostname ?? optionText(request, OptionCode.HostName), state: 'bound', expiresAt: new Date(expires) });
        return this.#reply(request, MessageType.Ack, network, formatIpv4(wanted), client, host, { leaseSeconds });
      }
      case MessageType.Decline: {
        const ip = optionIp(request, OptionCode.RequestedIp);
        if (ip !== undefined && network.pool?.contains(ip)) {
          const until = now + (this.#options.declineMs ?? 600_000);
          network.pool.hold(ip, mac, 'declined', until);
          await this.#options.writer.write({ ip: formatIpv4(ip), networkId: network.id, mac, clientId: null, hostname: null, state: 'declined', expiresAt: new Date(until) });
        }
        return undefined;
      }
      case MessageType.Release: {
        const ip = parseIpv4(request.ciaddr);
        if (ip !== undefined && ip !== 0 && (ip === reservation || network.pool?.holder(ip, now)?.mac === mac)) {
          network.pool?.free(ip, mac);
          await this.#options.writer.write({ ip: request.ciaddr, networkId: network.id, mac, clientId: null, hostname: null, state: 'released', expiresAt: new Date(now) });
        }
        return undefined;
      }
      case MessageType.Inform:
        return this.#reply(request, MessageType.Ack, network, '0.0.0.0', client, host, { inform: true });
      default:
        return undefined;
    }
  }

  #base(request: DhcpPacket, type: MessageType, yiaddr: string): { packet: DhcpPacket; options: DhcpOptions } {
    const options = new DhcpOptions().set(OptionCode.MessageType, Buffer.from([type])).set(OptionCode.ServerId, ipv4.encode(this.#options.serverId));
    const relayInfo = request.options.get(OptionCode.RelayAgentInfo);
    if (relayInfo) options.set(OptionCode.RelayAgentInfo, relayInfo); // RFC 3046: echoed unchanged
    const packet: DhcpPacket = { op: BOOTREPLY, htype: request.htype, hlen: request.hlen, hops: 0, xid: request.xid, secs: 0, flags: request.flags, ciaddr: type === MessageType.Ack ? request.ciaddr : '0.0.0.0', yiaddr, siaddr: '0.0.0.0', giaddr: request.giaddr, chaddr: request.chaddr, sname: '', file: '', options };
    return { packet, options };
  }

  #withBoot(packet: DhcpPacket, options: DhcpOptions, client: ReturnType<typeof classifyClient>, host: HostView | undefined): void {
    const urls = bootUrls(this.#options.bootBaseUrl);
    const answer = dhcpBootAnswer(client, host, { script: urls.script(), httpIpxeEfi: `${this.#options.bootBaseUrl.replace(/\/+$/, '')}/ipxe.efi` });
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
    return { packet, to: replyDestination(request, type) };
  }

  #nak(request: DhcpPacket, _network: NetworkView, message: string): DhcpReply {
    const { packet, options } = this.#base(request, MessageType.Nak, '0.0.0.0');
    options.set(OptionCode.Message, text.encode(message));
    packet.flags |= 0x8000; // RFC 2131 §4.3.2: a relay must broadcast a NAK
    return { packet, to: replyDestination(request, MessageType.Nak) };
  }

  /** proxyDHCP: boot information for PXE clients only, no address (PXE spec; see PROTOCOLS.md). */
  #proxyAnswer(request: DhcpPacket, type: MessageType, client: ReturnType<typeof classifyClient>, host: HostView | undefined, port: number): DhcpReply | undefined {
    if (!client.netboot) return undefined;
    const replyType = type === MessageType.Discover && port === 67 ? MessageType.Offer : type === MessageType.Request ? MessageType.Ack : undefined;
    if (replyType === undefined) return undefined;
    const { packet, options } = this.#base(request, replyType, '0.0.0.0');
    options.set(OptionCode.VendorClass, text.encode('PXEClient'));
    // PXE_DISCOVERY_CONTROL (sub-option 6) = 8: boot from the file named in this offer, no boot server discovery.
    options.set(OptionCode.VendorSpecific, subOptions.encode(new Map([[6, Buffer.from([8])]])));
    this.#withBoot(packet, options, client, host);
    if (!options.has(OptionCode.BootFileName)) return undefined;
    packet.ciaddr = request.ciaddr;
    return { packet, to: replyDestination(request, replyType) };
  }
}

function optionIp(packet: DhcpPacket, code: number): number | undefined {
  const value = packet.options.get(code);
  return value?.length === 4 ? value.readUInt32BE(0) : undefined;
}
function optionHex(packet: DhcpPacket, code: number): string | null {
  return packet.options.get(code)?.toString('hex') ?? null;
}
function optionText(packet: DhcpPacket, code: number): string | null {
  const value = packet.options.get(code);
  return value ? text.decode(value).slice(0, 253) : null;
}
