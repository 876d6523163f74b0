/**
 * Hosts CSV: one host a row, header first. Required columns: hostname, mac, network, profile;
 * optional: ip, uuid, bmc_type, bmc_address, bmc_username, bmc_credentials, and for Redfish BMCs
 * bmc_ca_file (the PEM CA that vouches for the BMC) and bmc_insecure (true/false: skip the
 * certificate check). Several MACs go in one cell, separated by ";" or spaces.
 * No password column: a CSV file gets mailed, committed and left in /tmp. bmc_credentials names a
 * credentials set (kvmfleet bmc credentials set NAME) holding the sealed password.
 */
import { parse } from 'csv-parse/sync';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { HostInput } from '../fleet/model.ts';

export const HOSTS_CSV_COLUMNS = [
  'hostname',
  'mac',
  'ip',
  'network',
  'profile',
  'uuid',
  'bmc_type',
  'bmc_address',
  'bmc_username',
  'bmc_credentials',
  'bmc_insecure',
  'bmc_ca_file',
] as const;
const REQUIRED = ['hostname', 'mac', 'network', 'profile'];

export interface CsvHostRow {
  /** Line of the file the row came from (the header is line 1). */
  readonly line: number;
  readonly host: HostInput;
}

export function parseHostsCsv(text: string): CsvHostRow[] {
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parse(text, {
      columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
      info: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
      comment: '#',
      comment_no_infix: true,
      max_record_size: 64 * 1024,
    });
  } catch (error) {
    throw new KvmfleetError(ErrorCode.BadRequest, `hosts CSV is not well-formed: ${(error as Error).message}`);
  }
  const header =
    records.length > 0
      ? Object.keys(records[0]!.record)
      : text
          .split(/\r?\n/, 1)[0]!
          .split(',')
          .map((h) => h.trim().toLowerCase());
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length > 0)
    throw new KvmfleetError(
      ErrorCode.BadRequest,
      `hosts CSV header lacks column(s): ${missing.join(', ')} (expected ${HOSTS_CSV_COLUMNS.join(',')})`,
    );
  if (header.includes('bmc_password'))
    throw new KvmfleetError(
      ErrorCode.BadRequest,
      'hosts CSV has a bmc_password column: passwords do not go in CSV files; name a credentials set in bmc_credentials (kvmfleet bmc credentials set NAME --user U --password-stdin)',
    );
  const unknown = header.filter((c) => !(HOSTS_CSV_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0)
    throw new KvmfleetError(ErrorCode.BadRequest, `hosts CSV has unknown column(s): ${unknown.join(', ')}`);

  return records.map(({ record, info }) => {
    const insecure = csvBoolean(record.bmc_insecure, info.lines);
    const bmc = record.bmc_address
      ? {
          type: record.bmc_type || 'ipmi',
          address: record.bmc_address,
          ...(record.bmc_username ? { username: record.bmc_username } : {}),
          ...(record.bmc_credentials ? { credentials: record.bmc_credentials } : {}),
          ...(insecure !== undefined ? { insecure } : {}),
          ...(record.bmc_ca_file ? { caFile: record.bmc_ca_file } : {}),
        }
      : null;
    if (!bmc && (insecure !== undefined || record.bmc_ca_file))
      throw new KvmfleetError(
        ErrorCode.BadRequest,
        `hosts CSV line ${info.lines}: bmc_insecure and bmc_ca_file need a bmc_address`,
      );
    return {
      line: info.lines,
      host: {
        hostname: record.hostname ?? '',
        macs: (record.mac ?? '').split(/[;\s]+/).filter((m) => m !== ''),
        ip: record.ip || null,
        network: record.network ?? '',
        profile: record.profile ?? '',
        smbiosUuid: record.uuid || null,
        bmc,
      },
    };
  });
}

/** An empty cell is "not set"; otherwise one of the usual spellings, or the line is refused. */
function csvBoolean(cell: string | undefined, line: number): boolean | undefined {
  const value = (cell ?? '').toLowerCase();
  if (value === '') return undefined;
  if (['true', 'yes', '1'].includes(value)) return true;
  if (['false', 'no', '0'].includes(value)) return false;
  throw new KvmfleetError(
    ErrorCode.BadRequest,
    `hosts CSV line ${line}: bmc_insecure is ${JSON.stringify(cell!.slice(0, 20))}, not true/false (yes/no, 1/0)`,
  );
}
