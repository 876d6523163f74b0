/**
 * Site YAML: the declarative description of sites, their networks, and profiles.
 * Applying it creates what is new and updates what exists (by name), all in one transaction.
 *
 *   sites:
 *     - name: dc1
 *       buildCap: 50
 *       networks:
 *         - { name: dc1-hv, cidr: 10.1.0.0/22, gateway: 10.1.0.1, dns: [10.1.0.10], domain: dc1.example.com,
 *             dynamicRange: { start: 10.1.3.0, end: 10.1.3.250 }, relays: [10.1.0.2] }
 *   profiles:
 *     - { name: rhel9-kvm, os: rhel9, installTreeUrl: http://mirror/rhel9 }
 */
import { parse as parseYaml } from 'yaml';
import { ErrorCode, KvmfleetError, type Problem } from '../errors.ts';
import type { NetworkInput, ProfileInput, SiteInput } from '../fleet/model.ts';
import { checkProfileInput } from '../fleet/profiles.ts';
import { checkSiteInput } from '../fleet/sites.ts';
import { validateNetwork, type ExistingNetwork } from '../fleet/validate-network.ts';

export interface SiteDocument {
  sites: SiteInput[];
  networks: NetworkInput[];
  profiles: ProfileInput[];
}

export interface ItemProblems {
  /** Where in the document: "sites[0]", "sites[1].networks[2]", "profiles[0]". */
  readonly item: string;
  readonly name: string;
  readonly problems: Problem[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listAt(doc: Record<string, unknown>, key: string, where: string): Record<string, unknown>[] {
  const value = doc[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every(isRecord))
    throw new KvmfleetError(ErrorCode.BadRequest, `${where}${key} must be a list of mappings`);
  return value;
}

/** Parses the YAML into inputs; structure errors (not YAML, wrong shapes) are thrown, field checks come later. */
export function parseSiteYaml(text: string): SiteDocument & { networkPaths: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new KvmfleetError(ErrorCode.BadRequest, `site YAML does not parse: ${(error as Error).message}`);
  }
  if (!isRecord(doc))
    throw new KvmfleetError(
      ErrorCode.BadRequest,
      'site YAML must be a mapping with sites:, networks: and/or profiles:',
    );
  const unknown = Object.keys(doc).filter((k) => !['sites', 'networks', 'profiles'].includes(k));
  if (unknown.length > 0)
    throw new KvmfleetError(ErrorCode.BadRequest, `site YAML has unknown top-level key(s): ${unknown.join(', ')}`);
  const result: SiteDocument & { networkPaths: string[] } = { sites: [], networks: [], profiles: [], networkPaths: [] };
  listAt(doc, 'sites', '').forEach((site, i) => {
    const { networks: _nested, ...fields } = site;
    result.sites.push(fields as unknown as SiteInput);
    listAt(site, 'networks', `sites[${i}].`).forEach((network, j) => {
      result.networks.push({ ...network, site: site.name } as unknown as NetworkInput);
      result.networkPaths.push(`sites[${i}].networks[${j}]`);
    });
  });
  listAt(doc, 'networks', '').forEach((network, i) => {
    result.networks.push(network as unknown as NetworkInput);
    result.networkPaths.push(`networks[${i}]`);
  });
  result.profiles = listAt(doc, 'profiles', '') as unknown as ProfileInput[];
  return result;
}

/** Checks every item of the document; networks against each other and against the store's others. */
export function checkSiteDocument(
  doc: SiteDocument & { networkPaths: string[] },
  storeNetworks: readonly ExistingNetwork[],
  storeSites: ReadonlySet<string>,
): ItemProblems[] {
  const errors: ItemProblems[] = [];
  const asProblems = (check: () => void): Problem[] => {
    try {
      check();
      return [];
    } catch (error) {
      if (error instanceof KvmfleetError) return [{ code: error.code, message: error.message }];
      throw error;
    }
  };
  doc.sites.forEach((site, i) => {
    const problems = asProblems(() => checkSiteInput(site));
    if (doc.sites.findIndex((s) => s.name === site.name) !== i)
      problems.push({ code: ErrorCode.AlreadyExists, message: `site "${site.name}" appears twice in the document` });
    if (problems.length) errors.push({ item: `sites[${i}]`, name: String(site.name), problems });
  });
  const siteNames = new Set([...storeSites, ...doc.sites.map((s) => s.name)]);
  const docNames = new Set(doc.networks.map((n) => n.name));
  const others: ExistingNetwork[] = [
    ...storeNetworks.filter((n) => !docNames.has(n.name)),
    ...doc.networks.map((n) => ({ name: n.name, cidr: String(n.cidr) })),
  ];
  doc.networks.forEach((network, i) => {
    const problems: Problem[] = [];
    if (typeof network.cidr !== 'string' || typeof network.name !== 'string')
      problems.push({ code: ErrorCode.Validation, message: 'a network needs a name and a cidr' });
    else {
      problems.push(...validateNetwork(network, others));
      if (doc.networks.findIndex((n) => n.name === network.name) !== i)
        problems.push({
          code: ErrorCode.AlreadyExists,
          message: `network "${network.name}" appears twice in the document`,
        });
    }
    if (!siteNames.has(network.site))
      problems.push({ code: ErrorCode.UnknownSite, message: `site "${network.site}" does not exist` });
    if (problems.length) errors.push({ item: doc.networkPaths[i]!, name: String(network.name), problems });
  });
  doc.profiles.forEach((profile, i) => {
    const problems = asProblems(() => checkProfileInput(profile));
    if (doc.profiles.findIndex((p) => p.name === profile.name) !== i)
      problems.push({
        code: ErrorCode.AlreadyExists,
        message: `profile "${profile.name}" appears twice in the document`,
      });
    if (problems.length) errors.push({ item: `profiles[${i}]`, name: String(profile.name), problems });
  });
  return errors;
}
