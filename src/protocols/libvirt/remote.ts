/**
 * The libvirt API kvmfleet uses, as typed calls over a LibvirtConnection. Procedure numbers and
 * argument/reply layouts follow libvirt's src/remote/remote_protocol.x.
 */
import type { XdrReader, XdrWriter } from '../xdr/xdr.ts';
import { XdrReader as Reader } from '../xdr/xdr.ts';
import { ConnectionClosedError, LibvirtConnection, type KeepaliveOptions } from './connection.ts';
import { openTransport, type TransportOptions } from './transport.ts';
import { parseLibvirtUri } from './uri.ts';
import { MEMORY_PEEK_MAX, Procedure, RemoteAuth, RemoteLimit } from './procedures.ts';
import type { Packet } from './packet.ts';
import {
  readDomain,
  readNetwork,
  readPool,
  readString,
  readVolume,
  writeDomain,
  writePool,
  writeString,
  writeVolume,
  type RemoteDomain,
  type RemoteNetwork,
  type RemoteStoragePool,
  type RemoteStorageVolume,
  UUID_LENGTH,
} from './types.ts';

export interface PoolInfo {
  state: number;
  capacity: bigint;
  allocation: bigint;
  available: bigint;
}

export interface VolumeInfo {
  type: number;
  capacity: bigint;
  allocation: bigint;
}

/** virDomainState */
export const DOMAIN_STATES = [
  'nostate',
  'running',
  'blocked',
  'paused',
  'shutdown',
  'shutoff',
  'crashed',
  'pmsuspended',
] as const;
export type DomainStateName = (typeof DOMAIN_STATES)[number];

export interface NodeInfo {
  model: string;
  memoryKiB: bigint;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export interface DomainInfo {
  state: DomainStateName;
  maxMemKiB: bigint;
  memoryKiB: bigint;
  vcpus: number;
  cpuTimeNs: bigint;
}

/** virDomainEventType: what a lifecycle event says happened. */
export const LIFECYCLE_EVENTS = [
  'defined',
  'undefined',
  'started',
  'suspended',
  'resumed',
  'stopped',
  'shutdown',
  'pmsuspended',
  'crashed',
] as const;
export type LifecycleEventName = (typeof LIFECYCLE_EVENTS)[number] | 'unknown';

export interface LifecycleEvent {
  readonly domain: RemoteDomain;
  readonly event: LifecycleEventName;
  /** The event-specific detail code (e.g. VIR_DOMAIN_EVENT_STOPPED_DESTROYED = 1). */
  readonly detail: number;
}

/** virDomainEventID */
const EVENT_ID_LIFECYCLE = 0;

/** virDomainUndefineFlagsValues */
export const UndefineFlags = {
  ManagedSave: 1,
  SnapshotsMetadata: 2,
  Nvram: 4,
  KeepNvram: 8,
  CheckpointsMetadata: 16,
} as const;
/** virDomainMemoryFlags */
export const MemoryPeekFlags = { Virtual: 1, Physical: 2 } as const;
/** virConnectListAllDomainsFlags */
export const ListDomainsFlags = { Active: 1, Inactive: 2 } as const;

/** VIR_DRV_FEATURE_PROGRAM_KEEPALIVE */
const FEATURE_PROGRAM_KEEPALIVE = 10;

export interface ConnectOptions extends TransportOptions {
  /** Default call timeout (calls that start or stop QEMU get minutes regardless). */
  readonly callTimeoutMs?: number;
  /** false: no PINGs sent (PINGs from the daemon are still answered). */
  readonly keepalive?: KeepaliveOptions | false;
}
/**
 * Starting or stopping QEMU can take long: libvirtd answers a failed KVM start only after ~45 s
 * here. These calls get minutes, not the default 30 s.
 */
const SLOW_PROCEDURES = new Set<Procedure>([
  Procedure.DomainCreate,
  Procedure.DomainCreateXml,
  Procedure.DomainDestroy,
  Procedure.DomainShutdown,
  Procedure.StorageVolCreateXmlFrom,
  Procedure.StorageVolCreateXml,
  Procedure.StorageVolDelete,
  Procedure.StoragePoolRefresh,
]);
const SLOW_CALL_TIMEOUT_MS = 300_000;
const domainArg = (dom: RemoteDomain) => (w: XdrWriter) => writeDomain(w, dom);

export class LibvirtClient {
  constructor(readonly connection: LibvirtConnection) {}

  static async openUnix(socketPath: string, uri: string): Promise<LibvirtClient> {
    return LibvirtClient.#handshake(new LibvirtClient(await LibvirtConnection.unix(socketPath)), uri);
  }

  /**
   * Connects by libvirt URI (qemu:///system, qemu+ssh://root@hv1/system, qemu+tcp://hv1/system,
   * test:///default …): opens the transport, authenticates, opens the driver, and starts keepalive
   * (default: a PING after 5 s of quiet, dead after 5 unanswered — libvirt's own defaults).
   */
  static async connect(uriText: string, options: ConnectOptions = {}): Promise<LibvirtClient> {
    const uri = parseLibvirtUri(uriText);
    const stream = await openTransport(uri, options);
    const client = await LibvirtClient.#handshake(
      new LibvirtClient(new LibvirtConnection(stream, options.callTimeoutMs)),
      uri.remoteUri,
    );
    if (options.keepalive !== false) await client.enableKeepalive(options.keepalive ?? { intervalMs: 5000, count: 5 });
    return client;
  }

  static async #handshake(client: LibvirtClient, uri: string): Promise<LibvirtClient> {
    try {
      await client.authenticate();
      await client.open(uri);
    } catch (error) {
      client.connection.close();
      throw error;
    }
    return client;
  }

  /** Starts sending keepalive PINGs if the daemon supports the keepalive program; says whether it does. */
  async enableKeepalive(options: KeepaliveOptions): Promise<boolean> {
    const supported = await this.#call(
      Procedure.ConnectSupportsFeature,
      (w) => void w.int(FEATURE_PROGRAM_KEEPALIVE),
      (r) => r.int(),
    );
    if (supported) this.connection.startKeepalive(options);
    return supported === 1;
  }

  /**
   * The daemon says which authentication its socket wants (remote_auth_type): none, or polkit —
   * which on a local socket checks the peer's credentials, so there is nothing to send. SASL is not
   * supported (kvmfleet reaches remote hypervisors through SSH to their local socket instead).
   */
  async authenticate(): Promise<void> {
    const types = await this.#call(Procedure.AuthList, undefined, (r) =>
      r.array(RemoteLimit.AuthTypeList, (x) => x.int()),
    );
    if (types.length === 0 || types.includes(RemoteAuth.None)) return;
    if (types.includes(RemoteAuth.Polkit)) {
      await this.#call(Procedure.AuthPolkit, undefined, (r) => r.int());
      return;
    }
    throw new Error(
      `libvirt wants authentication kvmfleet does not speak (types ${types.join(', ')}; SASL is not supported)`,
    );
  }

  #call<T = void>(procedure: Procedure, args?: (w: XdrWriter) => void, reply?: (r: XdrReader) => T): Promise<T> {
    return this.connection.call(
      procedure,
      args,
      reply,
      SLOW_PROCEDURES.has(procedure) ? SLOW_CALL_TIMEOUT_MS : undefined,
    );
  }

  open(uri: string, flags = 0): Promise<void> {
    return this.#call(Procedure.ConnectOpen, (w) => void w.optional(uri, writeString).uint(flags));
  }

  async close(): Promise<void> {
    if (this.connection.closed) return;
    try {
      await this.#call(Procedure.ConnectClose);
    } catch (error) {
      // Some proxies (virt-ssh-helper) end the stream as the daemon closes: closed is what we asked for.
      if (!(error instanceof ConnectionClosedError)) throw error;
    } finally {
      this.connection.close();
    }
  }

  getType(): Promise<string> {
    return this.#call(Procedure.ConnectGetType, undefined, readString);
  }

  getVersion(): Promise<bigint> {
    return this.#call(Procedure.ConnectGetVersion, undefined, (r) => r.uhyper());
  }

  getLibVersion(): Promise<bigint> {
    return this.#call(Procedure.ConnectGetLibVersion, undefined, (r) => r.uhyper());
  }

  getHostname(): Promise<string> {
    return this.#call(Procedure.ConnectGetHostname, undefined, readString);
  }

  getCapabilities(): Promise<string> {
    return this.#call(Procedure.ConnectGetCapabilities, undefined, readString);
  }

  nodeGetInfo(): Promise<NodeInfo> {
    return this.#call(Procedure.NodeGetInfo, undefined, (r) => {
      // `char model[32]` is an XDR fixed array of chars: 32 four-byte words, one character each.
      const chars: number[] = [];
      for (let i = 0; i < 32; i++) chars.push(r.int() & 0xff);
      const end = chars.indexOf(0);
      return {
        model: Buffer.from(end < 0 ? chars : chars.slice(0, end)).toString('latin1'),
        memoryKiB: r.uhyper(),
        cpus: r.int(),
        mhz: r.int(),
        nodes: r.int(),
        sockets: r.int(),
        cores: r.int(),
        threads: r.int(),
      };
    });
  }

  listAllDomains(flags = 0): Promise<RemoteDomain[]> {
    return this.#call(
      Procedure.ConnectListAllDomains,
      (w) => void w.int(1).uint(flags),
      (r) => {
        const domains = r.array(RemoteLimit.DomainList, readDomain);
        r.uint();
        return domains;
      },
    );
  }

  lookupDomainByName(name: string): Promise<RemoteDomain> {
    return this.#call(Procedure.DomainLookupByName, (w) => void w.string(name), readDomain);
  }

  lookupDomainByUuid(uuid: Buffer): Promise<RemoteDomain> {
    if (uuid.length !== UUID_LENGTH) throw new RangeError('a UUID is 16 bytes');
    return this.#call(Procedure.DomainLookupByUuid, (w) => void w.fixedOpaque(uuid), readDomain);
  }

  defineDomainXml(xml: string): Promise<RemoteDomain> {
    return this.#call(Procedure.DomainDefineXml, (w) => void w.string(xml), readDomain);
  }

  /** Starts a transient domain (gone once it stops): probes, throwaway guests. */
  createTransientDomain(xml: string, flags = 0): Promise<RemoteDomain> {
    return this.#call(Procedure.DomainCreateXml, (w) => void w.string(xml).uint(flags), readDomain);
  }

  startDomain(dom: RemoteDomain): Promise<void> {
    return this.#call(Procedure.DomainCreate, domainArg(dom));
  }

  /** ACPI shutdown request: the guest decides; the domain is off once a lifecycle event says so. */
  shutdownDomain(dom: RemoteDomain): Promise<void> {
    return this.#call(Procedure.DomainShutdown, domainArg(dom));
  }

  destroyDomain(dom: RemoteDomain): Promise<void> {
    return this.#call(Procedure.DomainDestroy, domainArg(dom));
  }

  undefineDomain(dom: RemoteDomain, flags = 0): Promise<void> {
    return this.#call(Procedure.DomainUndefineFlags, (w) => void (writeDomain(w, dom), w.uint(flags)));
  }

  getDomainState(dom: RemoteDomain): Promise<{ state: DomainStateName; reason: number }> {
    return this.#call(
      Procedure.DomainGetState,
      (w) => void (writeDomain(w, dom), w.uint(0)),
      (r) => ({ state: DOMAIN_STATES[r.int()] ?? 'nostate', reason: r.int() }),
    );
  }

  getDomainInfo(dom: RemoteDomain): Promise<DomainInfo> {
    return this.#call(Procedure.DomainGetInfo, domainArg(dom), (r) => ({
      state: DOMAIN_STATES[r.uint()] ?? 'nostate',
      maxMemKiB: r.uhyper(),
      memoryKiB: r.uhyper(),
      vcpus: r.uint(),
      cpuTimeNs: r.uhyper(),
    }));
  }

  /**
   * Reads `size` bytes (at most 64 KiB, libvirt's limit) of a running domain's memory at `offset`:
   * guest-physical addresses with MemoryPeekFlags.Physical (virDomainMemoryPeek).
   */
  peekDomainMemory(
    dom: RemoteDomain,
    offset: bigint,
    size: number,
    flags: number = MemoryPeekFlags.Physical,
  ): Promise<Buffer> {
    if (!(Number.isInteger(size) && size > 0 && size <= MEMORY_PEEK_MAX))
      throw new RangeError(`memory peek size ${size} must be 1–${MEMORY_PEEK_MAX}`);
    return this.#call(
      Procedure.DomainMemoryPeek,
      (w) => void (writeDomain(w, dom), w.uhyper(offset).uint(size).uint(flags)),
      (r) => r.opaque(MEMORY_PEEK_MAX),
    );
  }

  getDomainXml(dom: RemoteDomain, flags = 0): Promise<string> {
    return this.#call(Procedure.DomainGetXmlDesc, (w) => void (writeDomain(w, dom), w.uint(flags)), readString);
  }

  setDomainAutostart(dom: RemoteDomain, autostart: boolean): Promise<void> {
    return this.#call(Procedure.DomainSetAutostart, (w) => void (writeDomain(w, dom), w.int(autostart ? 1 : 0)));
  }

  getDomainAutostart(dom: RemoteDomain): Promise<boolean> {
    return this.#call(Procedure.DomainGetAutostart, domainArg(dom), (r) => r.int() !== 0);
  }

  listAllStoragePools(flags = 0): Promise<RemoteStoragePool[]> {
    return this.#call(
      Procedure.ConnectListAllStoragePools,
      (w) => void w.int(1).uint(flags),
      (r) => {
        const pools = r.array(4096, readPool);
        r.uint();
        return pools;
      },
    );
  }

  lookupStoragePool(name: string): Promise<RemoteStoragePool> {
    return this.#call(Procedure.StoragePoolLookupByName, (w) => void w.string(name), readPool);
  }

  refreshStoragePool(pool: RemoteStoragePool): Promise<void> {
    return this.#call(Procedure.StoragePoolRefresh, (w) => void (writePool(w, pool), w.uint(0)));
  }

  getStoragePoolInfo(pool: RemoteStoragePool): Promise<PoolInfo> {
    return this.#call(
      Procedure.StoragePoolGetInfo,
      (w) => writePool(w, pool),
      (r) => ({ state: r.uint(), capacity: r.uhyper(), allocation: r.uhyper(), available: r.uhyper() }),
    );
  }

  listVolumes(pool: RemoteStoragePool): Promise<RemoteStorageVolume[]> {
    return this.#call(
      Procedure.StoragePoolListAllVolumes,
      (w) => void (writePool(w, pool), w.int(1).uint(0)),
      (r) => {
        const volumes = r.array(16384, readVolume);
        r.uint();
        return volumes;
      },
    );
  }

  createVolume(pool: RemoteStoragePool, xml: string, flags = 0): Promise<RemoteStorageVolume> {
    return this.#call(
      Procedure.StorageVolCreateXml,
      (w) => void (writePool(w, pool), w.string(xml).uint(flags)),
      readVolume,
    );
  }

  /** A new volume from an existing one (a full clone, done by the storage driver). */
  cloneVolume(
    pool: RemoteStoragePool,
    xml: string,
    source: RemoteStorageVolume,
    flags = 0,
  ): Promise<RemoteStorageVolume> {
    return this.#call(
      Procedure.StorageVolCreateXmlFrom,
      (w) => void (writePool(w, pool), w.string(xml), writeVolume(w, source), w.uint(flags)),
      readVolume,
    );
  }

  lookupVolume(pool: RemoteStoragePool, name: string): Promise<RemoteStorageVolume> {
    return this.#call(Procedure.StorageVolLookupByName, (w) => void (writePool(w, pool), w.string(name)), readVolume);
  }

  deleteVolume(volume: RemoteStorageVolume, flags = 0): Promise<void> {
    return this.#call(Procedure.StorageVolDelete, (w) => void (writeVolume(w, volume), w.uint(flags)));
  }

  getVolumeInfo(volume: RemoteStorageVolume): Promise<VolumeInfo> {
    return this.#call(
      Procedure.StorageVolGetInfo,
      (w) => writeVolume(w, volume),
      (r) => ({ type: r.int(), capacity: r.uhyper(), allocation: r.uhyper() }),
    );
  }

  /** Writes `data` into the volume from its start (virStorageVolUpload), e.g. a cloud-init seed. */
  uploadVolume(volume: RemoteStorageVolume, data: Buffer): Promise<void> {
    return this.connection.upload(
      Procedure.StorageVolUpload,
      (w) => {
        writeVolume(w, volume);
        w.uhyper(0n).uhyper(BigInt(data.length)).uint(0);
      },
      data,
      SLOW_CALL_TIMEOUT_MS,
    );
  }

  /** Free memory on the host, in bytes. */
  nodeGetFreeMemory(): Promise<bigint> {
    return this.#call(Procedure.NodeGetFreeMemory, undefined, (r) => r.uhyper());
  }

  getVolumePath(volume: RemoteStorageVolume): Promise<string> {
    return this.#call(Procedure.StorageVolGetPath, (w) => writeVolume(w, volume), readString);
  }

  listAllNetworks(flags = 0): Promise<RemoteNetwork[]> {
    return this.#call(
      Procedure.ConnectListAllNetworks,
      (w) => void w.int(1).uint(flags),
      (r) => {
        const networks = r.array(16384, readNetwork);
        r.uint();
        return networks;
      },
    );
  }

  lookupNetwork(name: string): Promise<RemoteNetwork> {
    return this.#call(Procedure.NetworkLookupByName, (w) => void w.string(name), readNetwork);
  }

  /**
   * Domain lifecycle events (defined, started, stopped, …) for every domain of this connection,
   * delivered as typed objects. Returns a function that stops them.
   */
  async onLifecycle(listener: (event: LifecycleEvent) => void): Promise<() => Promise<void>> {
    const handler = (packet: Packet) => {
      if (packet.header.procedure !== Procedure.DomainEventLifecycle) return;
      try {
        const r = new Reader(packet.body);
        const domain = readDomain(r);
        const event = r.int();
        const detail = r.int();
        listener({ domain, event: LIFECYCLE_EVENTS[event] ?? 'unknown', detail });
      } catch {
        /* a malformed event is dropped; the connection goes on */
      }
    };
    this.connection.on('event', handler);
    await this.#call(Procedure.ConnectDomainEventRegisterAny, (w) => void w.int(EVENT_ID_LIFECYCLE));
    return async () => {
      this.connection.off('event', handler);
      await this.#call(Procedure.ConnectDomainEventDeregisterAny, (w) => void w.int(EVENT_ID_LIFECYCLE));
    };
  }
}
