/**
 * The node registry: every `kvmfleet serve` process announces its name, site, roles and the
 * address of its boot HTTP role, and renews that every few seconds. A node not seen for
 * NODE_TTL_MS is not alive (it crashed or lost the store); a node that stops cleanly leaves.
 */
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { VERSION } from '../version.ts';

export const NODE_TTL_MS = 30_000;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export interface NodeAnnouncement {
  readonly name: string;
  readonly site?: string | undefined;
  readonly roles: readonly string[];
  readonly httpAddress?: string | undefined;
  readonly apiUrl?: string | undefined;
  /** Read at every heartbeat: what the node reports of itself. */
  readonly detail?: () => Record<string, unknown>;
}

export interface ClusterNode {
  readonly name: string;
  readonly site: string | null;
  readonly roles: string[];
  readonly httpAddress: string | null;
  readonly apiUrl: string | null;
  readonly version: string;
  readonly startedAt: string;
  readonly seenAt: string;
  readonly alive: boolean;
  readonly detail: Record<string, unknown>;
}

export async function announceNode(db: Kysely<Database>, node: NodeAnnouncement): Promise<void> {
  if (!NAME.test(node.name))
    throw new KvmfleetError(
      ErrorCode.Validation,
      `node name "${node.name}" must be 1–64 letters, digits, ".", "_" or "-"`,
    );
  let siteId: number | null = null;
  if (node.site) {
    const site = await db.selectFrom('sites').select('id').where('name', '=', node.site).executeTakeFirst();
    siteId = site?.id ?? null; // a site not imported yet: announced without one, fixed at the next heartbeat
  }
  const values = {
    site_id: siteId,
    roles: JSON.stringify(node.roles),
    http_address: node.httpAddress ?? null,
    api_url: node.apiUrl ?? null,
    version: VERSION,
    seen_at: new Date().toISOString(),
    detail: JSON.stringify(node.detail?.() ?? {}),
  };
  await db
    .insertInto('nodes')
    .values({ name: node.name, ...values, started_at: new Date().toISOString() })
    .onConflict((oc) => oc.column('name').doUpdateSet(values))
    .execute();
}

export async function leaveNode(db: Kysely<Database>, name: string): Promise<void> {
  await db.deleteFrom('nodes').where('name', '=', name).execute();
}

export async function listNodes(
  db: Kysely<Database>,
  filter: { site?: string; role?: string; aliveOnly?: boolean } = {},
): Promise<ClusterNode[]> {
  let q = db
    .selectFrom('nodes')
    .leftJoin('sites', 'sites.id', 'nodes.site_id')
    .selectAll('nodes')
    .select('sites.name as site')
    .orderBy('nodes.name');
  if (filter.site) q = q.where('sites.name', '=', filter.site);
  const now = Date.now();
  return (await q.execute())
    .map((row) => {
      const seen = new Date(row.seen_at);
      return {
        name: row.name,
        site: row.site,
        roles: row.roles,
        httpAddress: row.http_address,
        apiUrl: row.api_url,
        version: row.version,
        startedAt: new Date(row.started_at).toISOString(),
        seenAt: seen.toISOString(),
        alive: now - seen.getTime() < NODE_TTL_MS,
        detail: row.detail as Record<string, unknown>,
      };
    })
    .filter((n) => (!filter.role || n.roles.includes(filter.role)) && (!filter.aliveOnly || n.alive));
}

/** Announces now and every `intervalMs`; stop() leaves the registry. Store hiccups are retried at the next beat. */
export function startHeartbeat(
  db: Kysely<Database>,
  node: NodeAnnouncement,
  intervalMs = 10_000,
): { stop(): Promise<void>; ready: Promise<void> } {
  const beat = () => announceNode(db, node).catch(() => undefined);
  const ready = beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  return {
    ready,
    async stop() {
      clearInterval(timer);
      await leaveNode(db, node.name).catch(() => undefined);
    },
  };
}
