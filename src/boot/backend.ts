/**
 * Everything a booting machine's answer needs from the fleet, behind one narrow interface (as
 * smee's backend: GetByMac, GetByIP): the DHCP role, the boot HTTP role and the cache ask it, never
 * the tables. Two implementations: the store (here), and the cached view of it that answers while
 * the store is away (host-cache.ts). Plain data out; what to do with it is decided elsewhere.
 */
import type { Kysely } from 'kysely';
import type { BootHost } from '../fleet/build-model.ts';
import { findBootHost, selectBootHosts, toBootHost } from '../fleet/builds.ts';
import type { Database } from '../store/schema.ts';

export type { BootHost } from '../fleet/build-model.ts';

export interface BootBackend {
  /** The host with this MAC (normalized, lower case with colons), with its build state. */
  hostByMac(mac: string): Promise<BootHost | undefined>;
  /** The host with this SMBIOS UUID (lower case), found by its first MAC. */
  hostByUuid(uuid: string): Promise<BootHost | undefined>;
  /** The hosts of these MACs (those with none are left out): one query per HOSTS_BY_MAC_CHUNK MACs. */
  hostsByMac(macs: readonly string[]): Promise<BootHost[]>;
  /** Every MAC's host in one read: the snapshot the DHCP role's reservations and the cache are made of. */
  allHosts(): Promise<BootHost[]>;
}

/** MACs per `in (…)` list: bounded so a long list is several statements, not one huge one. */
export const HOSTS_BY_MAC_CHUNK = 5000;

/** The store itself: every answer is as fresh as PostgreSQL's (and fails when it is away). */
export class StoreBootBackend implements BootBackend {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  hostByMac(mac: string): Promise<BootHost | undefined> {
    return findBootHost(this.#db, mac);
  }

  async hostByUuid(uuid: string): Promise<BootHost | undefined> {
    const row = await selectBootHosts(this.#db)
      .where('hosts.smbios_uuid', '=', uuid)
      .orderBy('host_macs.position')
      .executeTakeFirst();
    return row ? toBootHost(row) : undefined;
  }

  async hostsByMac(macs: readonly string[]): Promise<BootHost[]> {
    const hosts: BootHost[] = [];
    for (let i = 0; i < macs.length; i += HOSTS_BY_MAC_CHUNK) {
      const chunk = macs.slice(i, i + HOSTS_BY_MAC_CHUNK);
      const rows = await selectBootHosts(this.#db).where('host_macs.mac', 'in', chunk).execute();
      hosts.push(...rows.map(toBootHost));
    }
    return hosts;
  }

  async allHosts(): Promise<BootHost[]> {
    return (await selectBootHosts(this.#db).execute()).map(toBootHost);
  }
}
