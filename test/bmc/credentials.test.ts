import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, it } from 'node:test';
import { sql } from 'kysely';
import {
  deleteCredentialSet,
  getHostBmc,
  listCredentialSets,
  loginFor,
  parseBmcAddress,
  putCredentialSet,
  resealAll,
  setHostBmc,
} from '../../src/bmc/credentials.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { createNetwork } from '../../src/fleet/networks.ts';
import { createProfile } from '../../src/fleet/profiles.ts';
import { createSite } from '../../src/fleet/sites.ts';
import { describeEachStore } from '../helpers/stores.ts';

const rejects = async (p: Promise<unknown>, code: string) =>
  assert.rejects(p, (e: { code?: string }) => (assert.equal(e.code, code), true));

describeEachStore('BMC credentials', (ctx) => {
  const keyA = randomBytes(32);
  const keyB = randomBytes(32);
  const ring = keyringOf([keyA]);
  const keyring = () => ring;

  beforeEach(async () => {
    const db = ctx.store.db;
    await sql`truncate bmc_credentials restart identity`.execute(db);
    await createSite(db, { name: 'dc1' });
    await createNetwork(db, { name: 'n1', site: 'dc1', cidr: '10.0.0.0/24' });
    await createProfile(db, { name: 'p1', os: 'rhel9', installTreeUrl: 'http://mirror.example.com/rhel9/' });
    for (const hostname of ['h1', 'h2'])
      await createHost(db, {
        hostname,
        macs: [hostname === 'h1' ? '52:54:00:00:00:01' : '52:54:00:00:00:02'],
        network: 'n1',
        profile: 'p1',
      });
  });

  it('stores a host password sealed, answers passwordSet only, opens it for a login', async () => {
    const db = ctx.store.db;
    const view = await setHostBmc(db, keyring, 'h1', {
      type: 'ipmi',
      address: '10.0.0.9',
      username: 'admin',
      password: 's3cret-pw',
    });
    assert.deepEqual(view, {
      type: 'ipmi',
      address: '10.0.0.9',
      username: 'admin',
      credentials: null,
      passwordSet: true,
    });
    const row = await db
      .selectFrom('hosts')
      .select(['bmc', 'bmc_secret'])
      .where('hostname', '=', 'h1')
      .executeTakeFirstOrThrow();
    assert.ok(row.bmc_secret?.startsWith('kvmf1.'));
    assert.ok(!JSON.stringify(row).includes('s3cret-pw'));
    assert.deepEqual(await loginFor(db, keyring, 'h1'), {
      type: 'ipmi',
      host: '10.0.0.9',
      port: 623,
      username: 'admin',
      password: 's3cret-pw',
    });
    // a change of address keeps the password; the ciphertext is bound to this host's row
    await setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: '10.0.0.10:6230' });
    assert.equal((await loginFor(db, keyring, 'h1')).password, 's3cret-pw');
    await db
      .updateTable('hosts')
      .set({
        bmc: JSON.stringify({ type: 'ipmi', address: '10.0.0.11', username: 'admin' }),
        bmc_secret: row.bmc_secret,
      })
      .where('hostname', '=', 'h2')
      .execute();
    await rejects(loginFor(db, keyring, 'h2'), 'KVMF_ERR_SECRET_UNAVAILABLE');
  });

  it('shared credentials sets: used by many hosts, in use cannot be deleted', async () => {
    const db = ctx.store.db;
    await rejects(
      setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'bmc-h1', credentials: 'rack1' }),
      'KVMF_ERR_NOT_FOUND',
    );
    await putCredentialSet(db, keyring, 'rack1', { username: 'ADMIN', password: 'rack-pw' });
    for (const h of ['h1', 'h2'])
      await setHostBmc(db, keyring, h, { type: 'ipmi', address: `bmc-${h}`, credentials: 'rack1' });
    assert.deepEqual(await listCredentialSets(db), [{ name: 'rack1', username: 'ADMIN', passwordSet: true, hosts: 2 }]);
    assert.deepEqual(await loginFor(db, keyring, 'h2'), {
      type: 'ipmi',
      host: 'bmc-h2',
      port: 623,
      username: 'ADMIN',
      password: 'rack-pw',
    });
    assert.equal((await getHostBmc(db, 'h1'))?.passwordSet, true);
    await rejects(deleteCredentialSet(db, 'rack1'), 'KVMF_ERR_IN_USE');
    await rejects(
      setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'bmc-h1', credentials: 'rack1', password: 'x' }),
      'KVMF_ERR_VALIDATION',
    );
    // an address change keeps the set; a password of its own replaces it
    assert.equal((await setHostBmc(db, keyring, 'h2', { type: 'ipmi', address: 'bmc-h2b' })).credentials, 'rack1');
    assert.deepEqual(
      await setHostBmc(db, keyring, 'h2', { type: 'ipmi', address: 'bmc-h2b', username: 'own', password: 'own-pw' }),
      { type: 'ipmi', address: 'bmc-h2b', username: 'own', credentials: null, passwordSet: true },
    );
    assert.equal((await loginFor(db, keyring, 'h2')).password, 'own-pw');
  });

  it('refuses what an IPMI BMC cannot take and hosts without a BMC', async () => {
    const db = ctx.store.db;
    await rejects(loginFor(db, keyring, 'h1'), 'KVMF_ERR_NO_BMC');
    await rejects(
      setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'b', username: 'u', password: 'x'.repeat(21) }),
      'KVMF_ERR_VALIDATION',
    );
    await rejects(
      setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'b c', username: 'u' }),
      'KVMF_ERR_VALIDATION',
    );
    await rejects(setHostBmc(db, keyring, 'h1', { type: 'telnet' as never, address: 'b' }), 'KVMF_ERR_VALIDATION');
    await setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'b', username: 'u' });
    await rejects(loginFor(db, keyring, 'h1'), 'KVMF_ERR_NO_BMC');
    assert.deepEqual(parseBmcAddress('[fd00::1]:6230', 'ipmi'), { host: 'fd00::1', port: 6230 });
    assert.deepEqual(parseBmcAddress('bmc1.example', 'redfish'), { host: 'bmc1.example', port: 443 });
  });

  it('Redfish TLS settings: a CA file or insecure, one replacing the other, kept across changes, dropped for IPMI', async () => {
    const db = ctx.store.db;
    const rf = { type: 'redfish' as const, address: 'bmc-h1:8443', username: 'root' };
    assert.deepEqual(
      await setHostBmc(db, keyring, 'h1', { ...rf, password: 'rf-pw', caFile: '/etc/kvmfleet/ca.pem' }),
      {
        type: 'redfish',
        address: 'bmc-h1:8443',
        username: 'root',
        credentials: null,
        passwordSet: true,
        caFile: '/etc/kvmfleet/ca.pem',
      },
    );
    assert.deepEqual(await loginFor(db, keyring, 'h1'), {
      type: 'redfish',
      host: 'bmc-h1',
      port: 8443,
      caFile: '/etc/kvmfleet/ca.pem',
      username: 'root',
      password: 'rf-pw',
    });
    // an address change keeps it; insecure replaces the CA file; a CA file turns the check back on
    assert.equal((await setHostBmc(db, keyring, 'h1', { ...rf, address: 'bmc-h1b' })).caFile, '/etc/kvmfleet/ca.pem');
    const insecure = await setHostBmc(db, keyring, 'h1', { ...rf, insecure: true });
    assert.deepEqual([insecure.insecure, insecure.caFile], [true, undefined]);
    assert.equal((await loginFor(db, keyring, 'h1')).insecure, true);
    const back = await setHostBmc(db, keyring, 'h1', { ...rf, caFile: '/etc/kvmfleet/ca2.pem' });
    assert.deepEqual([back.insecure, back.caFile], [undefined, '/etc/kvmfleet/ca2.pem']);
    assert.equal((await setHostBmc(db, keyring, 'h1', { ...rf, caFile: null })).caFile, undefined);
    await rejects(setHostBmc(db, keyring, 'h1', { ...rf, caFile: 'relative.pem' }), 'KVMF_ERR_VALIDATION');
    await rejects(setHostBmc(db, keyring, 'h1', { ...rf, insecure: true, caFile: '/x.pem' }), 'KVMF_ERR_VALIDATION');
    await rejects(setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'b', insecure: true }), 'KVMF_ERR_VALIDATION');
    await setHostBmc(db, keyring, 'h1', { ...rf, insecure: true });
    const ipmi = await setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'b' });
    assert.deepEqual([ipmi.insecure, ipmi.caFile], [undefined, undefined]);
  });

  it('rotation: resealAll moves every secret to the new first key; the old key can then go', async () => {
    const db = ctx.store.db;
    await setHostBmc(db, keyring, 'h1', { type: 'ipmi', address: 'b', username: 'u', password: 'pw1' });
    await putCredentialSet(db, keyring, 'rack1', { username: 'ADMIN', password: 'pw2' });
    const rotated = keyringOf([keyB, keyA]);
    assert.deepEqual(await resealAll(db, rotated), { resealed: 2, unopenable: 0 });
    assert.deepEqual(await resealAll(db, rotated), { resealed: 0, unopenable: 0 });
    const onlyB = () => keyringOf([keyB]);
    assert.equal((await loginFor(db, onlyB, 'h1')).password, 'pw1');
    await setHostBmc(db, onlyB, 'h2', { type: 'ipmi', address: 'b2', credentials: 'rack1' });
    assert.equal((await loginFor(db, onlyB, 'h2')).password, 'pw2');
  });
});
