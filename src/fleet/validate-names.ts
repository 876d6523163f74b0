/**
 * The shapes of names and addresses the server accepts, in one place: the validators test input
 * with these, and the API's JSON schemas (api/schemas.ts) carry the same sources as `pattern`, so
 * the OpenAPI document states exactly the rule the server enforces and the two cannot drift.
 * Each is a JSON-schema-compatible source (ECMAScript, no flags) and the RegExp built from it.
 */

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const OCTET = '(0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])';
const IPV4 = `${OCTET}(\\.${OCTET}){3}`;
/** A TCP port, 1–65535, no leading zero. */
const PORT = '([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';

export const PATTERN = {
  /** Sites and networks: a DNS label (they name DHCP scopes and files). */
  siteName: '^[a-z0-9][a-z0-9-]{0,62}$',
  networkName: '^[a-z0-9][a-z0-9-]{0,62}$',
  /** Profiles and users: lower case, digits, ".", "_", "-". */
  profileName: '^[a-z0-9][a-z0-9._-]{0,62}$',
  userName: '^[a-z0-9][a-z0-9._-]{0,62}$',
  /** A hostname (after lower-casing and dropping a trailing dot); at most 253 characters in all. */
  hostname: `^${LABEL}(\\.${LABEL})*$`,
  /** A DNS domain (a network's search domain). */
  domain: `^(${LABEL}\\.)*${LABEL}$`,
  /** libvirt domain names of VMs and templates. */
  vmName: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  /** Hypervisor names (often their FQDN). */
  hypervisorName: '^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$',
  /** A bulk clone's name prefix: room is left for the "-NNNN" suffix within a VM name. */
  namePrefix: '^[A-Za-z0-9][A-Za-z0-9._-]{0,55}$',
  /** The MAC spellings accepted for hosts: aa:bb:…, aa-bb-…, aabb.ccdd.eeff, aabbccddeeff (any case). */
  mac: '^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\\.){2}[0-9A-Fa-f]{4}$|^[0-9A-Fa-f]{12}$',
  /** A VM's MAC as libvirt is given it: lower case, colons. */
  vmMac: '^([0-9a-f]{2}:){5}[0-9a-f]{2}$',
  /** Dotted-quad IPv4, no leading zeros (which some parsers read as octal). */
  ipv4: `^${IPV4}$`,
  /** IPv4 CIDR with a prefix a network of hosts can have (/0–/30); host bits must be zero (checked by the server). */
  cidr: `^${IPV4}/([0-9]|[12][0-9]|30)$`,
  /** An install tree: http(s), a host (IPv4 or a name whose last label starts with a letter), an optional port and path. */
  httpUrl: `^[hH][tT][tT][pP][sS]?://(${IPV4}|([A-Za-z0-9_-]+\\.)*[A-Za-z][A-Za-z0-9_-]*)(:${PORT})?([/?#]\\S*)?$`,
  /** A path inside the install tree: not absolute, no ".." segment. */
  relativePath: '^(?!/)(?!(.*/)?\\.\\.(/|$)).*$',
  /** SMBIOS UUID (lower case, as the firmware's is normalised). */
  uuid: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
} as const;

export type PatternName = keyof typeof PATTERN;

export const RE: { readonly [K in PatternName]: RegExp } = Object.fromEntries(
  Object.entries(PATTERN).map(([k, source]) => [k, new RegExp(source)]),
) as { [K in PatternName]: RegExp };

/** Longest hostname (RFC 1035 §2.3.4, without the final dot). */
export const HOSTNAME_MAX = 253;
