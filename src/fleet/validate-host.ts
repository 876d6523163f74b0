/**
 * Pure checks of host records, one or thousands at a time: each row against the store's
 * existing identifiers (hostname, IP, MACs, SMBIOS UUID) and against the other rows of the batch.
 * The same function serves a single API call and a bulk import, so both give the same errors.
 */
import { ErrorCode, KvmfleetError, type Problem } from '../errors.ts';
import { formatIpv4, isHostAddress, parseCidr, parseIpv4, rangeContains } from '../protocols/ipv4.ts';
import { normalizeMac } from './mac.ts';
import type { DynamicRange, HostInput } from './model.ts';
import type { Bmc } from '../store/schema.ts';
import { checkBmcSettings, type BmcType } from '../bmc/credentials.ts';

import { HOSTNAME_MAX, RE } from './validate-names.ts';

const HOSTNAME = RE.hostname;
export const UUID = RE.uuid;

export interface NetworkFacts {
  readonly name: string;
  readonly cidr: string;
  readonly dynamicRange: DynamicRange | null;
}

/** What the store already holds, for the identifiers the batch mentions. Values are owning hostnames. */
export interface ExistingIdentifiers {
  readonly hostnames: ReadonlySet<string>;
  readonly ipOwners: ReadonlyMap<string, string>;
  readonly macOwners: ReadonlyMap<string, string>;
  readonly uuidOwners: ReadonlyMap<string, string>;
}

export interface HostContext {
  readonly networks: ReadonlyMap<string, NetworkFacts>;
  readonly profiles: ReadonlySet<string>;
  readonly existing: ExistingIdentifiers;
  /** create: an existing hostname is an error; upsert: the row replaces that host's record. */
  readonly mode: 'create' | 'upsert';
}

export interface NormalizedHost {
  readonly hostname: string;
  readonly macs: string[];
  readonly ip: string | null;
  readonly network: string;
  readonly profile: string;
  readonly smbiosUuid: string | null;
  readonly bmc: Bmc | null;
  readonly exists: boolean;
}

export interface RowProblems {
  /** 1-based position of the row in the batch. */
  readonly row: number;
  readonly hostname: string;
  readonly problems: Problem[];
}

export interface BatchResult {
  readonly hosts: NormalizedHost[];
  readonly errors: RowProblems[];
}

export function normalizeHostname(text: string): string {
  return text.trim().toLowerCase().replace(/\.$/, '');
}

export function validateHostBatch(rows: readonly HostInput[], ctx: HostContext): BatchResult {
  const hosts: NormalizedHost[] = [];
  const errors: RowProblems[] = [];
  // Identifiers claimed by earlier rows of this batch → the row that claimed them.
  const batchHostnames = new Map<string, number>();
  const batchIps = new Map<string, number>();
  const batchMacs = new Map<string, number>();
  const batchUuids = new Map<string, number>();

  rows.forEach((input, index) => {
    const row = index + 1;
    const problems: Problem[] = [];
    const bad = (code: Problem['code'], field: string, message: string) => problems.push({ code, field, message });
    const hostname = normalizeHostname(input.hostname ?? '');
    const exists = ctx.existing.hostnames.has(hostname);
    // An identifier owned by another host in the store or by an earlier row is a conflict.
    const takenBy = (
      owners: ReadonlyMap<string, string>,
      batch: Map<string, number>,
      key: string,
    ): string | undefined => {
      const earlier = batch.get(key);
      if (earlier !== undefined) return `row ${earlier}`;
      const owner = owners.get(key);
      if (owner !== undefined && owner !== hostname) return `host "${owner}"`;
      return undefined;
    };

    if (!HOSTNAME.test(hostname) || hostname.length > HOSTNAME_MAX)
      bad(ErrorCode.Validation, 'hostname', `"${input.hostname}" is not a valid hostname`);
    else if (batchHostnames.has(hostname))
      bad(
        ErrorCode.DuplicateHostname,
        'hostname',
        `hostname "${hostname}" already appears in row ${batchHostnames.get(hostname)}`,
      );
    else if (exists && ctx.mode === 'create')
      bad(ErrorCode.DuplicateHostname, 'hostname', `hostname "${hostname}" already exists`);

    const macs: string[] = [];
    if (!Array.isArray(input.macs) || input.macs.length === 0)
      bad(ErrorCode.Validation, 'macs', 'a host needs at least one MAC address');
    for (const raw of input.macs ?? []) {
      const mac = normalizeMac(String(raw));
      if (!mac) {
        bad(ErrorCode.Validation, 'macs', `"${raw}" is not a MAC address`);
        continue;
      }
      if (macs.includes(mac)) continue;
      const other = takenBy(ctx.existing.macOwners, batchMacs, mac);
      if (other) bad(ErrorCode.DuplicateMac, 'macs', `MAC ${mac} already belongs to ${other}`);
      macs.push(mac);
    }

    const network = ctx.networks.get(input.network);
    if (!network) bad(ErrorCode.UnknownNetwork, 'network', `network "${input.network}" does not exist`);
    if (!ctx.profiles.has(input.profile))
      bad(ErrorCode.UnknownProfile, 'profile', `profile "${input.profile}" does not exist`);

    let ip: string | null = null;
    if (input.ip !== undefined && input.ip !== null && input.ip !== '') {
      const value = parseIpv4(String(input.ip).trim());
      if (value === undefined) bad(ErrorCode.Validation, 'ip', `"${input.ip}" is not an IPv4 address`);
      else {
        ip = formatIpv4(value);
        const cidr = network ? parseCidr(network.cidr) : undefined;
        if (network && cidr && !isHostAddress(cidr, value))
          bad(
            ErrorCode.IpOutsideNetwork,
            'ip',
            `${ip} is not a host address of network "${network.name}" (${network.cidr})`,
          );
        else if (network?.dynamicRange) {
          const start = parseIpv4(network.dynamicRange.start)!;
          const end = parseIpv4(network.dynamicRange.end)!;
          if (rangeContains({ start, end }, value))
            bad(
              ErrorCode.IpInDynamicRange,
              'ip',
              `${ip} lies inside the dynamic range ${network.dynamicRange.start}–${network.dynamicRange.end} of network "${network.name}"`,
            );
        }
        const other = takenBy(ctx.existing.ipOwners, batchIps, ip);
        if (other) bad(ErrorCode.DuplicateIp, 'ip', `IP ${ip} already belongs to ${other}`);
      }
    }

    let smbiosUuid: string | null = null;
    if (input.smbiosUuid) {
      smbiosUuid = String(input.smbiosUuid).trim().toLowerCase();
      if (!UUID.test(smbiosUuid)) bad(ErrorCode.Validation, 'smbiosUuid', `"${input.smbiosUuid}" is not a UUID`);
      else {
        const other = takenBy(ctx.existing.uuidOwners, batchUuids, smbiosUuid);
        if (other) bad(ErrorCode.Validation, 'smbiosUuid', `SMBIOS UUID ${smbiosUuid} already belongs to ${other}`);
      }
    }

    // A BMC given with the host record obeys the same rules as one set through the BMC API.
    if (input.bmc) {
      try {
        checkBmcSettings({ ...input.bmc, type: input.bmc.type as BmcType });
      } catch (error) {
        if (!(error instanceof KvmfleetError)) throw error;
        bad(ErrorCode.Validation, 'bmc', error.message);
      }
    }

    // Claim this row's identifiers even when it has problems, so later duplicates are reported too.
    if (!batchHostnames.has(hostname)) batchHostnames.set(hostname, row);
    for (const mac of macs) if (!batchMacs.has(mac)) batchMacs.set(mac, row);
    if (ip && !batchIps.has(ip)) batchIps.set(ip, row);
    if (smbiosUuid && !batchUuids.has(smbiosUuid)) batchUuids.set(smbiosUuid, row);

    if (problems.length > 0) errors.push({ row, hostname: input.hostname ?? '', problems });
    else
      hosts.push({
        hostname,
        macs,
        ip,
        network: input.network,
        profile: input.profile,
        smbiosUuid,
        bmc: input.bmc ?? null,
        exists,
      });
  });
  return { hosts, errors };
}
