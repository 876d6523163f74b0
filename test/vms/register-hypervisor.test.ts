/**
 * Registering a hypervisor twice at once: both requests pass the early "already there?" check while
 * neither has inserted yet; the store's unique constraints decide, and the loser gets AlreadyExists
 * (the API's 409), not a raw constraint error (a 500).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, KvmfleetError } from '../../src/errors.ts';
import { createSite } from '../../src/fleet/sites.ts';
import type { LibvirtPool } from '../../src/protocols/libvirt/pool.ts';
import { registerHypervisor } from '../../src/vms/hypervisors.ts';
import { describeEachStore } from '../helpers/stores.ts';

// Test double: no libvirtd behind it; the refresh after the insert records the hypervisor as down.
const unreachablePool = {
  use: async () => {
    throw new Error('no libvirtd in this test');
  },
} as unknown as LibvirtPool;

describeEachStore('registering hypervisors concurrently', (ctx) => {
  for (const clash of ['name', 'uri'] as const) {
    test(`two registrations with the same ${clash}: one lands, the other is AlreadyExists`, async () => {
      await createSite(ctx.store.db, { name: 'lab' });
      const input = (n: number) => ({
        name: clash === 'name' ? 'hv-a' : `hv-${n}`,
        uri: clash === 'uri' ? 'qemu+tcp://10.0.0.1/system' : `qemu+tcp://10.0.0.${n}/system`,
        site: 'lab',
        domainType: 'qemu' as const,
      });
      const results = await Promise.allSettled(
        [1, 2, 3].map((n) => registerHypervisor(ctx.store.db, unreachablePool, input(n))),
      );
      const landed = results.filter((r) => r.status === 'fulfilled');
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      assert.equal(landed.length, 1, JSON.stringify(results));
      assert.equal(refused.length, 2);
      for (const error of refused) {
        assert.ok(error instanceof KvmfleetError, String(error));
        assert.equal(error.code, ErrorCode.AlreadyExists);
      }
      const rows = await ctx.store.db.selectFrom('hypervisors').select('name').execute();
      assert.equal(rows.length, 1);
    });
  }
});
