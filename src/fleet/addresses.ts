/**
 * Static addresses for VMs from a kvmfleet network, beside the network rules they follow: a VM's
 * address is the lowest host address of the network that nothing else claims — not the gateway, a
 * relay, inside the dynamic (DHCP) range, a host's reservation, another VM's address or a bound
 * lease. The choice is a read, not a reservation: the caller inserts it under the store's unique
 * constraint on vms.ip and asks again when another clone took it meanwhile.
 */
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { firstFreeHostAddress, formatIpv4, parseCidr, parseIpv4, type Ipv4 } from '../protocols/ipv4.ts';
import type { Db } from '../store/tx.ts';
import { getNetwork } from './networks.ts';

export interface StaticAddress {
  readonly networkId: number;
  readonly ip: string;
  readonly prefix: number;
  readonly gateway: string | null;
  readonly dns: string[];
  readonly domain: string;
}

/** The lowest free static address of network `networkName` with the settings a guest needs to use it. */
export async function freeStaticAddress(db: Db, networkName: string): Promise<StaticAddress> {
  const network = await getNetwork(db, networkName);
  const row = await db.selectFrom('networks').select('id').where('name', '=', networkName).executeTakeFirstOrThrow();
  const cidr = parseCidr(network.cidr)!;
  const taken = new Set<Ipv4>();
  const add = (text: string | null | undefined) => {
    const ip = text ? parseIpv4(text.replace(/\/\d+$/, '')) : undefined;
    if (ip !== undefined) taken.add(ip);
  };
  add(network.gateway);
  network.relays.forEach(add);
  for (const h of await db
    .selectFrom('hosts')
    .select('ip')
    .where('network_id', '=', row.id)
    .where('ip', 'is not', null)
    .execute())
    add(h.ip);
  for (const v of await db.selectFrom('vms').select('ip').where('ip', 'is not', null).execute()) add(v.ip);
  for (const l of await db
    .selectFrom('leases')
    .select('ip')
    .where('network_id', '=', row.id)
    .where('state', '=', 'bound')
    .execute())
    add(l.ip);
  const range = network.dynamicRange
    ? { start: parseIpv4(network.dynamicRange.start)!, end: parseIpv4(network.dynamicRange.end)! }
    : undefined;
  const ip = firstFreeHostAddress(
    cidr,
    (candidate) => taken.has(candidate) || (range !== undefined && candidate >= range.start && candidate <= range.end),
  );
  if (ip === undefined)
    throw new KvmfleetError(ErrorCode.NoPlacement, `network "${networkName}" has no free static address left`);
  return {
    networkId: row.id,
    ip: formatIpv4(ip),
    prefix: cidr.prefix,
    gateway: network.gateway,
    dns: [...network.dns],
    domain: network.domain,
  };
}
