/** Pure checks of a network definition against the other networks. */
import { ErrorCode, type Problem } from '../errors.ts';
import {
  cidrsOverlap,
  formatCidr,
  isHostAddress,
  parseCidr,
  parseIpv4,
  rangeContains,
  type Cidr,
} from '../protocols/ipv4.ts';
import type { NetworkInput } from './model.ts';

import { RE } from './validate-names.ts';

const NAME = RE.networkName;
const DOMAIN = RE.domain;

export interface ExistingNetwork {
  readonly name: string;
  readonly cidr: string;
}

export function validateNetwork(input: NetworkInput, others: readonly ExistingNetwork[]): Problem[] {
  const problems: Problem[] = [];
  const bad = (field: string, message: string, code: Problem['code'] = ErrorCode.Validation) =>
    problems.push({ code, field, message });

  if (!NAME.test(input.name))
    bad('name', `network name "${input.name}" must be lower-case letters, digits and hyphens`);
  const cidr = parseCidr(input.cidr);
  if (!cidr) {
    bad('cidr', `"${input.cidr}" is not an IPv4 network in CIDR form with no host bits set (e.g. 10.1.0.0/22)`);
    return problems;
  }
  if (cidr.prefix > 30) bad('cidr', `network ${input.cidr} is too small to hold hosts (prefix must be /30 or shorter)`);

  const inside = (field: string, text: string | null | undefined) => {
    if (text === null || text === undefined) return undefined;
    const ip = parseIpv4(text);
    if (ip === undefined) bad(field, `"${text}" is not an IPv4 address`);
    else if (!isHostAddress(cidr, ip))
      bad(field, `${text} is not a host address of ${input.cidr}`, ErrorCode.IpOutsideNetwork);
    return ip;
  };
  const gateway = inside('gateway', input.gateway);
  for (const [i, dns] of (input.dns ?? []).entries())
    if (parseIpv4(dns) === undefined) bad(`dns[${i}]`, `"${dns}" is not an IPv4 address`);
  for (const [i, relay] of (input.relays ?? []).entries())
    if (parseIpv4(relay) === undefined) bad(`relays[${i}]`, `"${relay}" is not an IPv4 address`);
  if (input.domain && !DOMAIN.test(input.domain)) bad('domain', `"${input.domain}" is not a DNS domain`);

  if (input.dynamicRange) {
    const start = inside('dynamicRange.start', input.dynamicRange.start);
    const end = inside('dynamicRange.end', input.dynamicRange.end);
    if (start !== undefined && end !== undefined) {
      if (start > end)
        bad(
          'dynamicRange',
          `dynamic range starts (${input.dynamicRange.start}) after it ends (${input.dynamicRange.end})`,
        );
      else if (gateway !== undefined && rangeContains({ start, end }, gateway))
        bad('gateway', `gateway ${input.gateway} lies inside the dynamic range`, ErrorCode.IpInDynamicRange);
    }
  }

  for (const other of others) {
    if (other.name === input.name) continue;
    const otherCidr: Cidr | undefined = parseCidr(other.cidr);
    if (otherCidr && cidrsOverlap(cidr, otherCidr)) {
      problems.push({
        code: ErrorCode.CidrOverlap,
        field: 'cidr',
        message: `${formatCidr(cidr)} overlaps network "${other.name}" (${other.cidr})`,
      });
    }
  }
  return problems;
}
