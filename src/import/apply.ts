/** Imports run in one transaction: every item is checked first, and one bad item means nothing is written. */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { applyHosts } from '../fleet/hosts.ts';
import { putNetwork } from '../fleet/networks.ts';
import { putProfile } from '../fleet/profiles.ts';
import { putSite } from '../fleet/sites.ts';
import type { Database } from '../store/schema.ts';
import { inventoryTransaction } from '../store/tx.ts';
import { parseHostsCsv } from './hosts-csv.ts';
import { checkSiteDocument, parseSiteYaml } from './site-yaml.ts';

export interface Counts {
  created: number;
  updated: number;
}

export interface SiteImportResult {
  dryRun: boolean;
  sites: Counts;
  networks: Counts;
  profiles: Counts;
}

export async function importSiteYaml(
  db: Kysely<Database>,
  text: string,
  options: { dryRun?: boolean } = {},
): Promise<SiteImportResult> {
  const doc = parseSiteYaml(text);
  return inventoryTransaction(db, async (trx) => {
    const storeNetworks = await trx.selectFrom('networks').select(['name', 'cidr']).execute();
    const storeSites = new Set((await trx.selectFrom('sites').select('name').execute()).map((s) => s.name));
    const storeProfiles = new Set((await trx.selectFrom('profiles').select('name').execute()).map((p) => p.name));
    const errors = checkSiteDocument(doc, storeNetworks, storeSites);
    if (errors.length > 0) {
      throw new KvmfleetError(
        ErrorCode.ImportRejected,
        `${errors.length} item(s) of the site document have problems; nothing was imported`,
        { items: errors },
      );
    }
    const storeNetworkNames = new Set(storeNetworks.map((n) => n.name));
    const count = (items: { name: string }[], existing: Set<string>): Counts => {
      const updated = items.filter((i) => existing.has(i.name)).length;
      return { created: items.length - updated, updated };
    };
    const result: SiteImportResult = {
      dryRun: !!options.dryRun,
      sites: count(doc.sites, storeSites),
      networks: count(doc.networks, storeNetworkNames),
      profiles: count(doc.profiles, storeProfiles),
    };
    if (options.dryRun) return result;
    for (const site of doc.sites) await putSite(trx, site, 'upsert');
    for (const profile of doc.profiles) await putProfile(trx, profile, 'upsert');
    for (const network of doc.networks) await putNetwork(trx, network, 'upsert');
    return result;
  });
}

export interface HostsImportResult extends Counts {
  dryRun: boolean;
  rows: number;
}

export async function importHostsCsv(
  db: Kysely<Database>,
  text: string,
  options: { mode?: 'create' | 'upsert'; dryRun?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<HostsImportResult> {
  const rows = parseHostsCsv(text);
  return inventoryTransaction(db, async (trx) => {
    const { created, updated, errors } = await applyHosts(
      trx,
      rows.map((r) => r.host),
      {
        mode: options.mode ?? 'create',
        dryRun: !!options.dryRun,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      },
    );
    if (errors.length > 0) {
      // Report by the file's line numbers, which is what the operator will open.
      const report = errors.map((e) => ({ line: rows[e.row - 1]!.line, hostname: e.hostname, problems: e.problems }));
      throw new KvmfleetError(
        ErrorCode.ImportRejected,
        `${errors.length} of ${rows.length} row(s) have problems; nothing was imported`,
        { rows: report },
      );
    }
    return { dryRun: !!options.dryRun, rows: rows.length, created, updated };
  });
}
