/**
 * Jobs as leases, on the embedded store with a test double of VmService (the clone itself is
 * tested against libvirt in test/e2e/vms.e2e.test.ts): a worker that dies mid bulk deploy leaves a
 * job that another worker reclaims when the lease runs out and resumes from its per-item results —
 * every VM made exactly once, the half-made one cleaned up; cancel stops a queued or running job.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSite } from '../../src/fleet/sites.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import type { VmService } from '../../src/vms/vm-service.ts';

/** What the "hypervisors" hold: VM name → finished or half-made. Shared by every worker's double. */
type Fleet = Map<string, { complete: boolean; makes: number }>;

/** A test double of the VmService calls JobRunner makes; `hangAfter`: clones after that many never finish (a worker killed mid-clone). */
/** A test double of VmService. `gate`: clones after the first `gateAfter` wait for it before they finish. */
function vmServiceDouble(
  fleet: Fleet,
  options: { hangAfter?: number; delayMs?: number; gateAfter?: number; gate?: Promise<void> } = {},
): VmService {
  let started = 0;
  return {
    async getTemplate() {
      return { memoryMiB: 256, vcpus: 1 };
    },
    async place(_site: string, demands: unknown[]) {
      return demands.map((_, i) => (i % 2 ? 'hv2' : 'hv1'));
    },
    async clone(input: { name: string }) {
      if (fleet.has(input.name)) throw new Error(`a VM "${input.name}" already exists`);
      fleet.set(input.name, { complete: false, makes: (fleet.get(input.name)?.makes ?? 0) + 1 });
      started += 1;
      if (options.hangAfter !== undefined && started > options.hangAfter) return new Promise(() => {});
      if (options.gate && started > (options.gateAfter ?? 0)) await options.gate;
      await new Promise((r) => setTimeout(r, options.delayMs ?? 20));
      fleet.get(input.name)!.complete = true;
      return {};
    },
    async recoverClone(name: string) {
      const vm = fleet.get(name);
      if (vm?.complete) return 'complete';
      fleet.delete(name);
      return 'absent';
    },
  } as unknown as VmService;
}

let store: Store;
before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  const site = await createSite(store.db, { name: 'lab', buildCap: 10 });
  for (const name of ['hv1', 'hv2']) {
    await store.db
      .insertInto('hypervisors')
      .values({
        name,
        uri: `test:///${name}`,
        site_id: (site as unknown as { id?: number }).id ?? 1,
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
after(async () => store?.close());

const waitFor = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    assert.ok(Date.now() < deadline, `timed out; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test(
  'a worker killed mid bulk deploy: another reclaims the job when its lease runs out and finishes it, each VM made once',
  { timeout: 60_000 },
  async () => {
    const fleet: Fleet = new Map();
    const first = new JobRunner(store.db, vmServiceDouble(fleet, { hangAfter: 6 }), { leaseMs: 900, pollMs: 100 });
    const queued = await first.bulkClone({ template: 't', count: 20, namePrefix: 'web', kind: 'linked', site: 'lab' });
    await waitFor(
      () => first.get(queued.id),
      (j) => j.done >= 6,
    );
    first.stop(); // "SIGKILL": its clones in hand never finish, it renews nothing from now on
    const half = [...fleet.entries()].filter(([, v]) => !v.complete).map(([k]) => k);
    assert.ok(half.length >= 1, 'the dead worker left half-made VMs');
    const held = await store.db
      .selectFrom('jobs')
      .select(['state', 'lease_owner'])
      .where('id', '=', queued.id)
      .executeTakeFirstOrThrow();
    assert.deepEqual(held, { state: 'running', lease_owner: first.workerId });

    const second = new JobRunner(store.db, vmServiceDouble(fleet), { leaseMs: 900, pollMs: 100 });
    try {
      const job = await waitFor(
        () => second.get(queued.id),
        (j) => j.state !== 'running' && j.state !== 'queued',
      );
      assert.equal(job.state, 'succeeded', JSON.stringify(job.results.filter((r) => !r.ok)));
      assert.equal(job.results.length, 20);
      assert.equal(new Set(job.results.map((r) => r.name)).size, 20, 'every name once');
      assert.equal(fleet.size, 20);
      assert.ok(
        [...fleet.values()].every((v) => v.complete),
        'the half-made ones were cleaned up and made again',
      );
      const row = await store.db
        .selectFrom('jobs')
        .select(['attempts', 'lease_owner'])
        .where('id', '=', queued.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.attempts, 2);
      assert.equal(row.lease_owner, null);
    } finally {
      second.stop();
    }
  },
);

test(
  'cancel: a queued job at once; a running one starts no more items and ends cancelled',
  { timeout: 60_000 },
  async () => {
    const idle = new JobRunner(store.db, vmServiceDouble(new Map()), { work: false });
    const queued = await idle.bulkClone({ template: 't', count: 3, namePrefix: 'q', kind: 'linked', site: 'lab' });
    assert.equal((await idle.cancel(queued.id)).state, 'cancelled');

    const fleet: Fleet = new Map();
    // Clones after the first two wait at a gate that opens only once the runner has read the cancel flag,
    // so the job cannot finish before the cancel lands however slow the machine is.
    let open = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const runner = new JobRunner(store.db, vmServiceDouble(fleet, { delayMs: 20, gateAfter: 2, gate }), {
      leaseMs: 600,
      pollMs: 100,
    });
    try {
      const job = await runner.bulkClone({ template: 't', count: 12, namePrefix: 'c', kind: 'linked', site: 'lab' });
      await waitFor(
        () => runner.get(job.id),
        (j) => j.done >= 2,
      );
      await runner.cancel(job.id);
      // The runner reads the flag when it renews its lease (one statement): a lease renewed after the cancel
      // was written has seen it.
      const leaseUntil = async () =>
        new Date(
          (await store.db.selectFrom('jobs').select('lease_until').where('id', '=', job.id).executeTakeFirstOrThrow())
            .lease_until ?? 0,
        ).getTime();
      const leaseAtCancel = await leaseUntil();
      await waitFor(leaseUntil, (at) => at !== leaseAtCancel);
      open();
      const ended = await waitFor(
        () => runner.get(job.id),
        (j) => j.state !== 'running',
      );
      assert.equal(ended.state, 'cancelled');
      assert.equal(ended.results.length, 12, 'every item has a result');
      const cancelled = ended.results.filter((r) => r.error === 'cancelled by an operator');
      assert.ok(cancelled.length >= 4, `items not started were cancelled (${cancelled.length})`);
      assert.equal(fleet.size, 12 - cancelled.length, 'no cancelled item made a VM');
    } finally {
      runner.stop();
    }
  },
);
