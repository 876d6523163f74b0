/**
 * The numbers of libvirt's RPC: the procedures of the remote program kvmfleet calls, and the limits
 * and enumerations it relies on. Each name is libvirt's own without its prefix, in PascalCase
 * (`ConnectOpen` is `REMOTE_PROC_CONNECT_OPEN`), so test/protocols/libvirt/procedures.test.ts can
 * check every number against src/remote/remote_protocol.x of the installed libvirt's Debian sources.
 * Sorted by number, as in the .x file.
 */

/** remote_protocol.x: enum remote_procedure (the subset kvmfleet calls or receives). */
export enum Procedure {
  ConnectOpen = 1,
  ConnectClose = 2,
  ConnectGetType = 3,
  ConnectGetVersion = 4,
  NodeGetInfo = 6,
  ConnectGetCapabilities = 7,
  DomainCreate = 9,
  DomainCreateXml = 10,
  DomainDefineXml = 11,
  DomainDestroy = 12,
  DomainGetXmlDesc = 14,
  DomainGetAutostart = 15,
  DomainGetInfo = 16,
  DomainLookupByName = 23,
  DomainLookupByUuid = 24,
  DomainSetAutostart = 29,
  DomainShutdown = 33,
  NetworkLookupByName = 46,
  ConnectGetHostname = 59,
  ConnectSupportsFeature = 60,
  AuthList = 66,
  AuthPolkit = 70,
  StoragePoolRefresh = 83,
  StoragePoolLookupByName = 84,
  StoragePoolGetInfo = 87,
  StorageVolCreateXml = 93,
  StorageVolDelete = 94,
  StorageVolLookupByName = 95,
  StorageVolGetInfo = 98,
  StorageVolGetPath = 100,
  NodeGetFreeMemory = 102,
  DomainMemoryPeek = 104,
  DomainEventLifecycle = 107,
  StorageVolCreateXmlFrom = 125,
  ConnectGetLibVersion = 157,
  ConnectDomainEventRegisterAny = 167,
  ConnectDomainEventDeregisterAny = 168,
  StorageVolUpload = 208,
  DomainGetState = 212,
  DomainUndefineFlags = 231,
  ConnectListAllDomains = 273,
  ConnectListAllStoragePools = 281,
  StoragePoolListAllVolumes = 282,
  ConnectListAllNetworks = 283,
}

/** remote_protocol.x: enum remote_auth_type. */
export enum RemoteAuth {
  None = 0,
  Sasl = 1,
  Polkit = 2,
}

/** virkeepaliveprotocol.x: enum keepalive_procedure. */
export enum KeepaliveProcedure {
  Ping = 1,
  Pong = 2,
}

/** remote_protocol.x limits kvmfleet's readers enforce (an answer longer than these is refused). */
export const RemoteLimit = {
  /** REMOTE_DOMAIN_LIST_MAX */
  DomainList: 16384,
  /** REMOTE_AUTH_TYPE_LIST_MAX */
  AuthTypeList: 20,
} as const;

/**
 * The most memory kvmfleet reads with one virDomainMemoryPeek. The protocol allows
 * REMOTE_DOMAIN_MEMORY_PEEK_BUFFER_MAX (4 MiB in libvirt 9); older daemons refused more than 64 KiB.
 */
export const MEMORY_PEEK_MAX = 65536;
