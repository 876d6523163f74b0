/**
 * The store away (PostgreSQL stopped, a full disk): a network-booting machine is still OFFERed
 * its address — the DISCOVER's host lookup falls back to the inventory copy and its timeline row
 * is not waited for — while no ACK leaves without a durable lease. Failed before: the DISCOVER's
 * store write failed and the machine got no OFFER (chaos disk-full, pg-outage).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DhcpService } from '../../src/boot/dhcp-service.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { importSiteYaml } from '../../src/import/apply.ts';
import {
  buildClientMessage,
  type ClientMessageSpec,
  type ClientMessageType,
} from '../../src/protocols/dhcp4/client-message.ts';
import { messageType, MessageType } from '../../src/protocols/dhcp4/packet.ts';
import { LeaseWriter } from '../../src/store/lease-writer.ts';
import { openStore, type Store } from '../../src/store/open.ts';

const SERVER = '10.8.0.1';
/** What PXE firmware on BIOS sends. */
const PXE = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 } as const;
let store: Store;
let service: DhcpService;
const errors: unknown[] = [];

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: s\n    networks:\n      - { name: n, cidr: 10.8.0.0/24, gateway: 10.8.0.1, dynamicRange: { start: 10.8.0.10, end: 10.8.0.50 } }\nprofiles:\n  - { name: p, os: rhel9, installTreeUrl: "http://x/t" }\n',
  );
  await createHost(store.db, {
    hostname: 'known',
    macs: ['52:54:00:00:bb:01'],
    ip: '10.8.0.5',
    network: 'n',
    profile: 'p',
  });
  service = new DhcpService({
    db: store.db,
    writer: new LeaseWriter(store.db),
    serverId: SERVER,
    mode: 'full',
    bootBaseUrl: 'http://10.8.0.1:8081',
    onError: (error) => errors.push(error),
  });
  await service.start();
  await store.close(); // from here on every query fails
});
after(() => service.stop());

const handle = (type: ClientMessageType, spec: ClientMessageSpec) =>
  service.handle(buildClientMessage(type, spec), { port: 67 });

test('a known machine network-booting is offered its reserved address; an unknown one a pool address; no ACK without the store', async () => {
  const known = await handle(MessageType.Discover, { mac: '52:54:00:00:bb:01', ...PXE });
  assert.ok(known, 'the known machine got no OFFER while the store is away');
  assert.equal(messageType(known.packet), MessageType.Offer);
  assert.equal(known.packet.yiaddr, '10.8.0.5');
  const unknown = await handle(MessageType.Discover, { mac: '52:54:00:00:bb:02', ...PXE });
  assert.ok(unknown, 'the unknown machine got no OFFER while the store is away');
  assert.equal(messageType(unknown.packet), MessageType.Offer);
  assert.ok(errors.length >= 2, 'the store errors were reported');
  const request = await handle(MessageType.Request, {
    mac: '52:54:00:00:bb:02',
    serverId: SERVER,
    requestedIp: unknown.packet.yiaddr,
    ...PXE,
  }).catch(() => undefined);
  assert.notEqual(request && messageType(request.packet), MessageType.Ack, 'an ACK left without a durable lease');
});
