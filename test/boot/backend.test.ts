/**
 * The boot backend (src/boot/backend.ts): the store and its cached view (HostCache) answer the same
 * questions alike while the store is up; the cache keeps answering once it is gone. And the store's
 * lookups are bounded: a list of MACs is one query per chunk, a snapshot one query.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KyselyPlugin } from 'kysely';
import { HOSTS_BY_MAC_CHUNK, StoreBootBackend, type BootBackend } from '../../src/boot/backend.ts';
import { HostCache } from '../../src/boot/host-cache.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { registerDiscovered } from '../../src/fleet/builds.ts';
import { importSiteYaml } from '../../src/import/apply.ts';
import { openStore, type Store } from '../../src/store/open.ts';

const UUID = '4c4c4544-0042-3510-8052-b4c04f4a4d31';
let store: Store;
let queries = 0;
/** Counts the statements the backend sends (a plugin on the real store, not a double of it). */
const counting: KyselyPlugin = {
  transformQuery: (args) => {
    queries += 1;
    return args.node;
  },
  transformResult: async (args) => args.result,
};
let backend: StoreBootBackend;
let cache: HostCache;

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: s\n    networks:\n      - { name: n, cidr: 10.7.0.0/24 }\nprofiles:\n  - { name: p, os: rhel9, installTreeUrl: "http://x/t" }\n',
  );
  await createHost(store.db, {
    hostname: 'a',
    macs: ['52:54:00:00:aa:01', '52:54:00:00:aa:02'],
    ip: '10.7.0.5',
    network: 'n',
    profile: 'p',
    smbiosUuid: UUID,
  });
  await createHost(store.db, { hostname: 'b', macs: ['52:54:00:00:bb:01'], network: 'n', profile: 'p' });
  await registerDiscovered(store.db, '52:54:00:00:cc:01', '10.7.0.77', 'dhcp');
  backend = new StoreBootBackend(store.db.withPlugin(counting));
  cache = new HostCache(backend);
  await cache.refresh();
});
after(() => store.close());

/** Both implementations, so each contract test runs against each. */
const implementations = (): [string, BootBackend][] => [
  ['store', backend],
  ['cache', cache],
];

test('hostByMac: the host with its reservation, network, site, profile and build state; unknown MACs find nothing', async () => {
  const site = await store.db.selectFrom('sites').select('id').executeTakeFirstOrThrow();
  const network = await store.db.selectFrom('networks').select('id').executeTakeFirstOrThrow();
  for (const [name, impl] of implementations()) {
    const a = await impl.hostByMac('52:54:00:00:aa:02');
    assert.ok(a, name);
    assert.deepEqual(
      { ...a, id: undefined, profileId: a.profileId !== null },
      {
        id: undefined,
        mac: '52:54:00:00:aa:02',
        hostname: 'a',
        ip: '10.7.0.5',
        networkId: network.id,
        siteId: site.id,
        profileId: true,
        buildState: 'ready',
      },
      name,
    );
    const discovered = await impl.hostByMac('52:54:00:00:cc:01');
    assert.equal(discovered?.buildState, 'discovered', name);
    assert.equal(discovered?.profileId, null, name);
    assert.equal(await impl.hostByMac('52:54:00:00:ff:ff'), undefined, name);
  }
});

test('hostsByMac: the known ones of a list, each under the MAC asked for; allHosts: one entry per MAC', async () => {
  for (const [name, impl] of implementations()) {
    const found = await impl.hostsByMac(['52:54:00:00:aa:01', '52:54:00:00:ff:ff', '52:54:00:00:bb:01']);
    assert.deepEqual(
      found.map((h) => `${h.mac} ${h.hostname}`).sort(),
      ['52:54:00:00:aa:01 a', '52:54:00:00:bb:01 b'],
      name,
    );
    const all = await impl.allHosts();
    assert.deepEqual(
      all.map((h) => h.mac).sort(),
      ['52:54:00:00:aa:01', '52:54:00:00:aa:02', '52:54:00:00:bb:01', '52:54:00:00:cc:01'],
      name,
    );
  }
});

test('hostByUuid: the store finds the host by its first MAC; the cache, keyed by MAC, finds nothing', async () => {
  const host = await backend.hostByUuid(UUID);
  assert.equal(host?.hostname, 'a');
  assert.equal(host?.mac, '52:54:00:00:aa:01');
  assert.equal(await backend.hostByUuid('00000000-0000-0000-0000-000000000000'), undefined);
  assert.equal(await cache.hostByUuid(UUID), undefined);
});

test('the store is bounded: a list is one query per chunk, a snapshot one query, a lookup one', async () => {
  const macs = Array.from(
    { length: HOSTS_BY_MAC_CHUNK + 1 },
    (_, i) => `02:00:00:${[i >> 16, (i >> 8) & 0xff, i & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`,
  );
  macs[HOSTS_BY_MAC_CHUNK] = '52:54:00:00:bb:01'; // the known one is in the second chunk
  queries = 0;
  const found = await backend.hostsByMac(macs);
  assert.equal(queries, 2, 'one query per chunk');
  assert.deepEqual(
    found.map((h) => h.hostname),
    ['b'],
  );
  queries = 0;
  await backend.hostsByMac([]);
  assert.equal(queries, 0, 'an empty list asks nothing');
  await backend.allHosts();
  assert.equal(queries, 1, 'a snapshot is one query');
  queries = 0;
  await backend.hostByMac('52:54:00:00:aa:01');
  assert.equal(queries, 1);
  queries = 0;
  await cache.hostByMac('52:54:00:00:aa:01');
  await cache.hostsByMac(macs);
  assert.equal(queries, 0, 'the cache answers without the store');
});

test('with the store gone the cache still answers from its snapshot, and a failed refresh keeps it', async () => {
  const other = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    other.db,
    'sites:\n  - name: s\n    networks:\n      - { name: n, cidr: 10.7.0.0/24 }\nprofiles:\n  - { name: p, os: rhel9, installTreeUrl: "http://x/t" }\n',
  );
  await createHost(other.db, { hostname: 'c', macs: ['52:54:00:00:dd:01'], network: 'n', profile: 'p' });
  const away = new HostCache(other.db);
  await away.refresh();
  await other.close();
  const store = new StoreBootBackend(other.db);
  await assert.rejects(store.hostByMac('52:54:00:00:dd:01'), 'the store itself no longer answers');
  await assert.rejects(away.refresh());
  assert.equal((await away.hostByMac('52:54:00:00:dd:01'))?.hostname, 'c');
  assert.equal(away.stats.hosts, 1);
});
