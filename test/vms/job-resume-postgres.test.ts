/**
 * Jobs as leases on PostgreSQL, two workers on two connection pools of one database (two nodes):
 * the first loses its store mid bulk deploy (its pool is closed: every progress write and lease
 * renewal fails), the second reclaims the job when the lease runs out and resumes it — 20 VMs,
 * each name once, the half-made ones cleaned up and made again. VmService is a test double here
 * (the clones themselves are tested against libvirt in test/e2e/vms.e2e.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSite } from '../../src/fleet/sites.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import type { VmService } from '../../src/vms/vm-service.ts';
import { createPostgresDatabase } from '../helpers/stores.ts';

type Fleet = Map<string, { complete: boolean }>;

/** A test double of the VmService calls JobRunner makes: clones take `delayMs`; a name made twice is refused. */
function vmServiceDouble(fleet: Fleet, delayMs: number): VmService {
  return {
    async getTemplate() {
      return { memoryMiB: 256, vcpus: 1 };
    },
    async place(_site: string, demands: unknown[]) {
      return demands.map((_, i) => (i % 2 ? 'hv2' : 'hv1'));
    },
    async clone(input: { name: string }) {
      if (fleet.has(input.name)) throw new Error(`a VM "${input.name}" already exists`);
      fleet.set(input.name, { complete: false });
      await new Promise((r) => setTimeout(r, delayMs));
      fleet.get(input.name)!.complete = true;
      return {};
    },
    async recoverClone(name: string) {
      if (fleet.get(name)?.complete) return 'complete';
      fleet.delete(name);
      return 'absent';
    },
  } as unknown as VmService;
}

let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
let nodeA: Store;
let nodeB: Store;
before(async () => {
  database = await createPostgresDatabase();
  nodeA = await openStore({ databaseUrl: database.url });
  nodeB = await openStore({ databaseUrl: database.url });
  await createSite(nodeB.db, { name: 'lab', buildCap: 10 });
  const site = await nodeB.db.selectFrom('sites').select('id').where('name', '=', 'lab').executeTakeFirstOrThrow();
  for (const name of ['hv1', 'hv2']) {
    await nodeB.db
      .insertInto('hypervisors')
      .values({
        name,
        uri: `test:///${name}`,
        site_id: site.id,
        host_id: null,
        max_parallel: 2,
        domain_type: 'qemu',
        cpus: 2,
        memory_mib: 8192,
        pool_capacity: null,
        pool_available: null,
        last_error: null,
        checked_at: null,
      })
      .execute();
  }
});
after(async () => {
  await nodeB?.close();
  await database?.drop();
});

const waitFor = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    assert.ok(Date.now() < deadline, `timed out; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test(
  'a worker that loses its store mid bulk deploy: another node reclaims the job and finishes it, each VM once',
  { timeout: 90_000 },
  async () => {
    const fleet: Fleet = new Map();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const first = new JobRunner(nodeA.db, vmServiceDouble(fleet, 150), { leaseMs: 1500, pollMs: 100 });
    const second = new JobRunner(nodeB.db, vmServiceDouble(fleet, 20), { leaseMs: 1500, pollMs: 100, work: false });
    let third: JobRunner | undefined;
    try {
      const queued = await second.bulkClone({
        template: 't',
        count: 20,
        namePrefix: 'web',
        kind: 'linked',
        site: 'lab',
      });
      await waitFor(
        () => second.get(queued.id),
        (j) => j.done >= 4,
      );
      await nodeA.close(); // node A's store is gone: its writes and renewals fail from now on
      third = new JobRunner(nodeB.db, vmServiceDouble(fleet, 20), { leaseMs: 1500, pollMs: 100 });
      const job = await waitFor(
        () => second.get(queued.id),
        (j) => j.state !== 'running' && j.state !== 'queued',
      );
      assert.equal(job.state, 'succeeded', JSON.stringify(job.results.filter((r) => !r.ok)));
      assert.equal(job.results.length, 20);
      assert.equal(new Set(job.results.map((r) => r.name)).size, 20, 'every name once');
      assert.equal(fleet.size, 20);
      assert.ok([...fleet.values()].every((v) => v.complete));
      const row = await nodeB.db
        .selectFrom('jobs')
        .select(['attempts', 'lease_owner'])
        .where('id', '=', queued.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.attempts, 2, 'claimed by A, then reclaimed by the other node');
      assert.equal(row.lease_owner, null);
      await new Promise((r) => setTimeout(r, 500)); // node A's last failed writes settle
      assert.deepEqual(unhandled, [], 'node A handled its store errors');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      first.stop();
      second.stop();
      third?.stop();
    }
  },
);
