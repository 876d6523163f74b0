/**
 * The libvirt API kvmfleet uses, as typed calls over a LibvirtConnection. Procedure numbers and
 * argument/reply layouts follow libvirt's src/remote/remote_protocol.x.
 */
import type { XdrReader, XdrWriter } from '../xdr/xdr.ts';
import { LibvirtConnection } from './connection.ts';
import { readDomain, readString, writeDomain, writeString, type RemoteDomain, UUID_LENGTH } from './types.ts';

export const enum Procedure {
  ConnectOpen = 1,
  ConnectClose = 2,
  ConnectGetType = 3,
  ConnectGetVersion = 4,
  NodeGetInfo = 6,
  ConnectGetCapabilities = 7,
  DomainCreate = 9,
  DomainDefineXml = 11,
  DomainDestroy = 12,
  DomainGetXmlDesc = 14,
  DomainGetAutostart = 15,
  DomainGetInfo = 16,
  DomainLookupByName = 23,
  DomainLookupByUuid = 24,
  DomainSetAutostart = 29,
  DomainShutdown = 33,
  ConnectGetHostname = 59,
  AuthList = 66,
  AuthPolkit = 70,
  ConnectGetLibVersion = 157,
  DomainGetState = 212,
  DomainUndefineFlags = 231,
  ConnectListAllDomains = 273,
}

/** virDomainState */
export const DOMAIN_STATES = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'] as const;
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

/** virDomainUndefineFlagsValues */
export const UndefineFlags = { ManagedSave: 1, SnapshotsMetadata: 2, Nvram: 4, KeepNvram: 8, CheckpointsMetadata: 16 } as const;
/** virConnectListAllDomainsFlags */
export const ListDomainsFlags = { Active: 1, Inactive: 2 } as const;

const DOMAIN_LIST_MAX = 16384;
const domainArg = (dom: RemoteDomain) => (w: XdrWriter) => writeDomain(w, dom);

export class LibvirtClient {
  constructor(readonly connection: LibvirtConnection) {}

  static async openUnix(socketPath: string, uri: string): Promise<LibvirtClient> {
    const client = new LibvirtClient(await LibvirtConnection.unix(socketPath));
    try {
      await client.authenticate();
      await client.open(uri);
    } catch (error) {
      client.connection.close();
      throw error;
    }
    return client;
  }

  /**
   * The daemon says which authentication its socket wants (remote_auth_type): none, or polkit —
   * which on a local socket checks the peer's credentials, so there is nothing to send. SASL is not
   * supported (kvmfleet reaches remote hypervisors through SSH to their local socket instead).
   */
  async authenticate(): Promise<void> {
    const types = await this.#call(Procedure.AuthList, undefined, (r) => r.array(20, (x) => x.int()));
    if (types.length === 0 || types.includes(0)) return;
    if (types.includes(2)) {
      await this.#call(Procedure.AuthPolkit, undefined, (r) => r.int());
      return;
    }
    throw new Error(`libvirt wants authentication kvmfleet does not speak (types ${types.join(', ')}; SASL is not supported)`);
  }

  #call<T = void>(procedure: Procedure, args?: (w: XdrWriter) => void, reply?: (r: XdrReader) => T): Promise<T> {
    return this.connection.call(procedure, args, reply);
  }

  open(uri: string, flags = 0): Promise<void> {
    return this.#call(Procedure.ConnectOpen, (w) => void w.optional(uri, writeString).uint(flags));
  }

  async close(): Promise<void> {
    try {
      await this.#call(Procedure.ConnectClose);
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
        const domains = r.array(DOMAIN_LIST_MAX, readDomain);
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

  getDomainXml(dom: RemoteDomain, flags = 0): Promise<string> {
    return this.#call(Procedure.DomainGetXmlDesc, (w) => void (writeDomain(w, dom), w.uint(flags)), readString);
  }

  setDomainAutostart(dom: RemoteDomain, autostart: boolean): Promise<void> {
    return this.#call(Procedure.DomainSetAutostart, (w) => void (writeDomain(w, dom), w.int(autostart ? 1 : 0)));
  }

  getDomainAutostart(dom: RemoteDomain): Promise<boolean> {
    return this.#call(Procedure.DomainGetAutostart, domainArg(dom), (r) => r.int() !== 0);
  }
}
