/**
 * A clone's identity, as a cloud-init NoCloud seed: meta-data (instance id, hostname), user-data
 * (#cloud-config: hostname, FQDN, SSH keys) and network-config (version 2: a static address from
 * the inventory on the NIC with this MAC, or DHCP). Pure text; seed-image.ts puts it on a disk.
 */
export interface SeedIdentity {
  readonly instanceId: string;
  readonly hostname: string;
  readonly domain?: string | undefined;
  readonly sshKeys?: readonly string[];
  readonly network?: {
    readonly mac: string;
    /** Absent: DHCP (e.g. a reservation kvmfleet's DHCP holds for this MAC). */
    readonly address?: {
      readonly ip: string;
      readonly prefix: number;
      readonly gateway?: string | undefined;
      readonly dns?: readonly string[];
    };
  };
}

export interface SeedFiles {
  readonly 'meta-data': string;
  readonly 'user-data': string;
  readonly 'network-config'?: string;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (value: string) => JSON.stringify(value);

export function seedFiles(identity: SeedIdentity): SeedFiles {
  if (!HOSTNAME.test(identity.hostname))
    throw new Error(`"${identity.hostname}" is not a valid host name (letters, digits and inner hyphens, at most 63)`);
  const fqdn = identity.domain ? `${identity.hostname}.${identity.domain}` : identity.hostname;
  const meta = [`instance-id: ${q(identity.instanceId)}`, `local-hostname: ${q(identity.hostname)}`, ''].join('\n');
  const user = [
    '#cloud-config',
    `hostname: ${q(identity.hostname)}`,
    `fqdn: ${q(fqdn)}`,
    'preserve_hostname: false',
    ...(identity.sshKeys?.length ? ['ssh_authorized_keys:', ...identity.sshKeys.map((k) => `  - ${q(k.trim())}`)] : []),
    '',
  ].join('\n');
  const net = identity.network;
  const network = net
    ? [
        'version: 2',
        'ethernets:',
        '  nic0:',
        '    match:',
        `      macaddress: ${q(net.mac)}`,
        ...(net.address
          ? [
              '    dhcp4: false',
              `    addresses: [${q(`${net.address.ip}/${net.address.prefix}`)}]`,
              ...(net.address.gateway ? [`    routes: [{ to: "0.0.0.0/0", via: ${q(net.address.gateway)} }]`] : []),
              ...(net.address.dns?.length
                ? [`    nameservers: { addresses: [${net.address.dns.map(q).join(', ')}] }`]
                : []),
            ]
          : ['    dhcp4: true']),
        '',
      ].join('\n')
    : undefined;
  return { 'meta-data': meta, 'user-data': user, ...(network ? { 'network-config': network } : {}) };
}
