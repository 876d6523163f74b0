/**
 * Build-token checks in batches (boot/token-batch.ts) and the boot answers built on them: the
 * requests that arrive together share one query that brings everything their answers need; a
 * spent, replaced or malformed token finds nothing; nothing is remembered past a batch; every
 * Kickstart and boot-file answer comes after its timeline event is committed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { TokenBatcher } from '../../src/boot/token-batch.ts';
import { hashToken } from '../../src/fleet/builds.ts';
import { TimelineWriter } from '../../src/fleet/timeline-writer.ts';
import { importHostsCsv, importSiteYaml } from '../../src/import/apply.ts';
import { generateEnterprise } from '../fixtures/enterprise.ts';
import { describeEachStore } from '../helpers/stores.ts';

describeEachStore('batched build-token checks', (ctx) => {
  let hostnames: string[] = [];
  const tokens = ['tok-aaaaaaaaaaaaaaaaaaaa', 'tok-bbbbbbbbbbbbbbbbbbbb', 'tok-cccccccccccccccccccc'];
  /** Three hosts, the first two building with tokens[0] and tokens[1]; the third ready. */
  const setup = async () => {
    const fleet = generateEnterprise({ sites: 1, hostsPerSite: 3, macPrefix: '52:54:07' });
    await importSiteYaml(ctx.store.db, fleet.yaml);
    await importHostsCsv(ctx.store.db, fleet.csv);
    hostnames = fleet.hostnames;
    for (const [i, hostname] of hostnames.slice(0, 2).entries())
      await ctx.store.db
        .updateTable('hosts')
        .set({ build_state: 'building', build_token: hashToken(tokens[i]!) })
        .where('hostname', '=', hostname)
        .execute();
  };
  const events = async (kind: string) =>
    ctx.store.db
      .selectFrom('host_events')
      .innerJoin('hosts', 'hosts.id', 'host_events.host_id')
      .select(['hosts.hostname', 'host_events.detail'])
      .where('host_events.kind', '=', kind)
      .orderBy('host_events.id')
      .execute();

  test('concurrent lookups share one query that brings host, MACs, network, site and profile', async () => {
    await setup();
    const batcher = new TokenBatcher(ctx.store.db);
    const [a, a2, b, c, bad] = await Promise.all([
      batcher.lookup(tokens[0]!),
      batcher.lookup(tokens[0]!),
      batcher.lookup(tokens[1]!),
      batcher.lookup(tokens[2]!), // no host has it
      batcher.lookup("x' or '1'='1"), // not token-shaped: never reaches the store
    ]);
    assert.equal(batcher.stats.queries, 1);
    assert.equal(batcher.stats.refusedShape, 1);
    assert.equal(a?.hostname, hostnames[0]);
    assert.equal(a2, a, 'the same token in one batch gets the same answer');
    assert.equal(b?.hostname, hostnames[1]);
    assert.equal(c, undefined);
    assert.equal(bad, undefined);
    assert.deepEqual(a?.macs, ['52:54:07:00:00:01']);
    assert.equal(a?.network?.site, 'site1');
    assert.equal(a?.network?.domain, 'site1.example.com');
    assert.equal(a?.profile?.name, 'rhel9-kvm');
    assert.equal(a?.profile?.installTreeUrl, 'http://boot.example.com/trees/rhel9');
  });

  test('a token spent or replaced between batches finds nothing in the next one (no cache)', async () => {
    await setup();
    const batcher = new TokenBatcher(ctx.store.db);
    assert.ok(await batcher.lookup(tokens[0]!));
    await ctx.store.db
      .updateTable('hosts')
      .set({ build_token: hashToken('tok-replacement-0000000') })
      .where('hostname', '=', hostnames[0]!)
      .execute();
    await ctx.store.db
      .updateTable('hosts')
      .set({ build_state: 'built', build_token: null })
      .where('hostname', '=', hostnames[1]!)
      .execute();
    assert.equal(await batcher.lookup(tokens[0]!), undefined);
    assert.equal(await batcher.lookup(tokens[1]!), undefined);
    assert.equal((await batcher.lookup('tok-replacement-0000000'))?.hostname, hostnames[0]);
    assert.equal(batcher.stats.queries, 4);
  });

  // Only the embedded store is one session; a PostgreSQL pool has many, so its lookup is never prepared.
  const embeddedOnly = (name: string, body: () => Promise<void>) => {
    if (ctx.backend === 'embedded') test(name, body);
  };
  embeddedOnly('prepared (the embedded store, one session): the same answers, batch after batch', async () => {
    await setup();
    const batcher = new TokenBatcher(ctx.store.db, { prepared: true });
    for (let round = 0; round < 3; round++) {
      const [a, b, c] = await Promise.all(tokens.map((token) => batcher.lookup(token)));
      assert.equal(a?.hostname, hostnames[0]);
      assert.deepEqual(a?.macs, ['52:54:07:00:00:01']);
      assert.equal(a?.profile?.kernelPath, 'images/pxeboot/vmlinuz');
      assert.equal(b?.hostname, hostnames[1]);
      assert.equal(c, undefined);
    }
    await ctx.store.db.updateTable('hosts').set({ build_state: 'built', build_token: null }).execute();
    assert.equal(await batcher.lookup(tokens[0]!), undefined);
  });

  test('a batch larger than maxBatch is split', async () => {
    await setup();
    const batcher = new TokenBatcher(ctx.store.db, { maxBatch: 2 });
    const found = await Promise.all(tokens.map((t) => batcher.lookup(t)));
    assert.deepEqual(
      found.map((f) => f?.hostname),
      [hostnames[0], hostnames[1], undefined],
    );
    assert.equal(batcher.stats.queries, 2);
  });

  test('concurrent Kickstarts: one token query, events all committed before the answers, in fewer commits', async () => {
    await setup();
    const timeline = new TimelineWriter(ctx.store.db);
    const boot = new BootService({ db: ctx.store.db, templates: new KickstartTemplates(), timeline });
    const base = 'http://boot.test:8081';
    const answers = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => boot.kickstart(tokens[0]!, base, `10.1.0.${20 + i}`)),
      boot.kickstart(tokens[1]!, base, '10.1.0.30'),
      boot.kickstart(tokens[2]!, base, '10.1.0.31'),
    ]);
    assert.equal(answers[7], undefined, 'an unknown token gets no Kickstart');
    for (const text of answers.slice(0, 6)) {
      assert.ok(text?.includes(`/boot/built/${tokens[0]}`));
      assert.ok(text?.includes(`--hostname=${hostnames[0]} `), text);
    }
    assert.ok(answers[6]?.includes(`/boot/built/${tokens[1]}`));
    assert.equal(boot.tokens.stats.queries, 1);
    const rows = await events('kickstart');
    assert.equal(rows.length, 7);
    assert.deepEqual(
      rows.map((r) => (r.detail as { ip: string }).ip),
      ['10.1.0.20', '10.1.0.21', '10.1.0.22', '10.1.0.23', '10.1.0.24', '10.1.0.25', '10.1.0.30'],
    );
    assert.ok(timeline.stats.commits < 7, `${timeline.stats.commits} commits`);
  });

  test('boot files: the tree URL of the build, its event committed; a wrong token gets nothing and records nothing', async () => {
    await setup();
    const boot = new BootService({ db: ctx.store.db, templates: new KickstartTemplates() });
    const [kernel, initrd, none] = await Promise.all([
      boot.bootFile(tokens[0]!, 'kernel'),
      boot.bootFile(tokens[0]!, 'initrd'),
      boot.bootFile(tokens[2]!, 'kernel'),
    ]);
    assert.equal(kernel, 'http://boot.example.com/trees/rhel9/images/pxeboot/vmlinuz');
    assert.equal(initrd, 'http://boot.example.com/trees/rhel9/images/pxeboot/initrd.img');
    assert.equal(none, undefined);
    assert.deepEqual(
      [...(await events('kernel')), ...(await events('initrd'))].map((r) => r.hostname),
      [hostnames[0], hostnames[0]],
    );
  });

  test('a store error fails every request of the batch', async () => {
    await setup();
    const batcher = new TokenBatcher(ctx.store.db);
    await ctx.store.db.schema.alterTable('host_macs').renameTo('host_macs_away').execute();
    try {
      const results = await Promise.allSettled([batcher.lookup(tokens[0]!), batcher.lookup(tokens[1]!)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['rejected', 'rejected'],
      );
    } finally {
      await ctx.store.db.schema.alterTable('host_macs_away').renameTo('host_macs').execute();
    }
  });
});
