/** Checks shared by the scenarios: did every ACKed lease survive, was any address given twice. */
import type { LeaseRow } from './lab.ts';

export interface LeaseVerdict {
  /** Distinct (mac, ip) pairs ACKed. */
  readonly acked: number;
  /** "mac ip" ACKed but not that client's lease in the store now. */
  readonly lost: string[];
  /** Addresses ACKed to more than one MAC. */
  readonly twice: string[];
}

export function ackedIntegrity(
  acks: readonly { mac: string; ip: string }[],
  stored: readonly LeaseRow[],
): LeaseVerdict {
  const pairs = new Map<string, { mac: string; ip: string }>();
  for (const a of acks) pairs.set(`${a.mac.toLowerCase()} ${a.ip}`, { mac: a.mac.toLowerCase(), ip: a.ip });
  const byIp = new Map(stored.map((l) => [l.ip, l]));
  const holders = new Map<string, Set<string>>();
  for (const { mac, ip } of pairs.values()) holders.set(ip, (holders.get(ip) ?? new Set()).add(mac));
  const lost = [...pairs.values()]
    .filter(({ mac, ip }) => byIp.get(ip)?.mac.toLowerCase() !== mac || byIp.get(ip)?.state !== 'bound')
    .map(({ mac, ip }) => `${mac} ${ip}`);
  const twice = [...holders].filter(([, macs]) => macs.size > 1).map(([ip, macs]) => `${ip} (${[...macs].join(', ')})`);
  return { acked: pairs.size, lost, twice };
}
