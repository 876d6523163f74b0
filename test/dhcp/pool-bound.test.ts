/**
 * The DHCP policy's memory under 10 000 distinct unknown MACs (random MACs cost a sender nothing):
 * the dynamic pool's entries stay under its stated bound, and neither a dynamic client's binding
 * nor a reservation is lost. Driven directly (no sockets), on an in-memory store.
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

const SERVER = '10.7.0.1';
const POOL_SIZE = 100;
let store: Store;
let service: DhcpService;

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: s\n    networks:\n      - { name: n, cidr: 10.7.0.0/24, gateway: 10.7.0.1, dynamicRange: { start: 10.7.0.10, end: 10.7.0.109 }, leaseSeconds: 3600 }\nprofiles:\n  - { name: p, os: rhel9, installTreeUrl: "http://x/t" }\n',
  );
  await createHost(store.db, {
    hostname: 'known',
    macs: ['52:54:00:00:aa:01'],
    ip: '10.7.0.5',
    network: 'n',
    profile: 'p',
  });
  // Offers lapse at once, so that every one of the 10 000 MACs is offered an address of its own
  // (the pool recycles lapsed offers): the worst case for what the pool remembers.
  service = new DhcpService({
    db: store.db,
    writer: new LeaseWriter(store.db),
    serverId: SERVER,
    mode: 'full',
    bootBaseUrl: 'http://10.7.0.1:8081',
    offerTtlMs: 1,
  });
  await service.start();
});
after(async () => {
  service.stop();
  await store.close();
});

const handle = (type: ClientMessageType, spec: ClientMessageSpec) =>
  service.handle(buildClientMessage(type, spec), { port: 67 });
const hex = (b: number) => (b & 255).toString(16).padStart(2, '0');
/** The i-th unknown MAC (locally administered). */
const mac = (i: number) => `02:00:00:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}`;

test(
  "10 000 unknown MACs' DISCOVERs: pool entries stay under the bound; a bound client and a reservation keep their addresses",
  { timeout: 120_000 },
  async () => {
    const steady = '52:54:00:00:bb:01';
    const offer = (await handle(MessageType.Discover, { mac: steady }))!;
    const ack = (await handle(MessageType.Request, {
      mac: steady,
      serverId: SERVER,
      requestedIp: offer.packet.yiaddr,
    }))!;
    assert.equal(messageType(ack.packet), MessageType.Ack);
    const address = ack.packet.yiaddr;

    let offers = 0;
    for (let i = 0; i < 10_000; i++) {
      // A fast handler answers more DISCOVERs within one millisecond than the pool has addresses:
      // a pause now and then lets the offers lapse, as the test means them to.
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 2));
      const reply = await handle(MessageType.Discover, { mac: mac(i) });
      if (reply && messageType(reply.packet) === MessageType.Offer) offers += 1;
    }
    assert.equal(offers, 10_000, 'every unknown MAC was answered');

    const [pool] = service.poolStats();
    const maxClients = Math.max(1024, 2 * POOL_SIZE);
    assert.ok(
      pool!.entries <= maxClients + POOL_SIZE,
      `${pool!.entries} entries for 10 000 clients (bound ${maxClients} clients + ${POOL_SIZE} holds)`,
    );
    assert.equal(pool!.bound, 1, 'the binding is still held');
    console.log(`pool entries after 10 000 unknown MACs: ${pool!.entries}`);

    // The bound client renews (RENEWING: ciaddr, no option 50/54) and is ACKed its address; a DISCOVER offers it again.
    const renew = (await handle(MessageType.Request, { mac: steady, ciaddr: address }))!;
    assert.equal(messageType(renew.packet), MessageType.Ack);
    assert.equal(renew.packet.yiaddr, address);
    assert.equal((await handle(MessageType.Discover, { mac: steady }))!.packet.yiaddr, address);
    // The reservation is untouched by the pool's churn.
    assert.equal((await handle(MessageType.Discover, { mac: '52:54:00:00:aa:01' }))!.packet.yiaddr, '10.7.0.5');
  },
);
