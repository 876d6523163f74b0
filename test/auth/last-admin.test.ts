/** Two deletes of the only two admins at once leave one admin, on both stores (both went before the fix). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUser, deleteUser, listUsers } from '../../src/auth/accounts.ts';
import { KvmfleetError } from '../../src/errors.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('last admin', (ctx) => {
  test('concurrent deletes of the only two admins: one succeeds, the other is refused, one admin is left', async () => {
    // Repeated: on PostgreSQL the two transactions interleave differently from one round to the next.
    for (let round = 0; round < 10; round++) {
      for (const user of await listUsers(ctx.store.db))
        await ctx.store.db.deleteFrom('users').where('name', '=', user.name).execute();
      await createUser(ctx.store.db, { name: 'alice', role: 'admin' });
      await createUser(ctx.store.db, { name: 'bob', role: 'admin' });
      await createUser(ctx.store.db, { name: 'carol', role: 'operator' });
      const outcomes = await Promise.allSettled([deleteUser(ctx.store.db, 'alice'), deleteUser(ctx.store.db, 'bob')]);
      const admins = (await listUsers(ctx.store.db)).filter((u) => u.role === 'admin');
      assert.equal(admins.length, 1, `round ${round}: ${admins.length} admins left`);
      assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
      const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      assert.ok(
        refused.reason instanceof KvmfleetError && refused.reason.code === 'KVMF_ERR_IN_USE',
        String(refused.reason),
      );
    }
  });

  test('an operator can still be removed while an admin is being removed', async () => {
    await createUser(ctx.store.db, { name: 'alice', role: 'admin' });
    await createUser(ctx.store.db, { name: 'bob', role: 'admin' });
    await createUser(ctx.store.db, { name: 'carol', role: 'operator' });
    await Promise.all([deleteUser(ctx.store.db, 'alice'), deleteUser(ctx.store.db, 'carol')]);
    assert.deepEqual(
      (await listUsers(ctx.store.db)).map((u) => u.name),
      ['bob'],
    );
    await assert.rejects(deleteUser(ctx.store.db, 'bob'), (e: KvmfleetError) => e.code === 'KVMF_ERR_IN_USE');
    await assert.rejects(deleteUser(ctx.store.db, 'nobody'), (e: KvmfleetError) => e.code === 'KVMF_ERR_NOT_FOUND');
  });
});
