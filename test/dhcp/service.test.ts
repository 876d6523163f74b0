/** The DHCP policy called directly (no sockets): every message type and REQUEST state of RFC 2131. */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { DhcpService, type DhcpServiceOptions } from '../../src/boot/dhcp-service.ts';
import { createHost } from '../../src/fleet/hosts.ts';
import { importSiteYaml } from '../../src/import/apply.ts';
import {
  buildClientMessage,
  type ClientMessageSpec,
  type ClientMessageType,
} from '../../src/protocols/dhcp4/client-message.ts';
import { ipv4 } from '../../src/protocols/dhcp4/option-codecs.ts';
import { formatIpv4 } from '../../src/protocols/ipv4.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { messageType, MessageType, type DhcpPacket } from '../../src/protocols/dhcp4/packet.ts';
import { LeaseWriter } from '../../src/store/lease-writer.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { emptyStore } from '../helpers/stores.ts';

const SERVER = '10.9.0.1';
const SITE =
  'sites:\n  - name: s\n    networks:\n      - { name: n, cidr: 10.9.0.0/24, gateway: 10.9.0.1, dns: [10.9.0.2], domain: lab.test, dynamicRange: { start: 10.9.0.100, end: 10.9.0.101 }, leaseSeconds: 300 }\n      - { name: far, cidr: 10.8.0.0/24, dynamicRange: { start: 10.8.0.10, end: 10.8.0.20 } }\nprofiles:\n  - { name: p, os: rhel9, installTreeUrl: "http://x/t" }\n';

// One store for the file (opening one takes seconds); each test starts from the same inventory
// and a service that has seen nothing, so any test passes alone and in any order.
let store: Store;
let writer: LeaseWriter;
let service: DhcpService;
const newService = (options: Partial<DhcpServiceOptions> = {}) =>
  new DhcpService({
    db: store.db,
    writer,
    serverId: SERVER,
    mode: 'full',
    bootBaseUrl: 'http://10.9.0.1:8081',
    ...options,
  });

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
});
after(async () => {
  await store.close();
});
beforeEach(async () => {
  await emptyStore(store);
  await importSiteYaml(store.db, SITE);
  await createHost(store.db, {
    hostname: 'known',
    macs: ['52:54:00:00:00:0a'],
    ip: '10.9.0.10',
    network: 'n',
    profile: 'p',
  });
  writer = new LeaseWriter(store.db);
  service = newService();
  await service.start();
});
afterEach(async () => {
  service.stop();
  await writer.drain();
});

/** A client's message as the service gets it from the socket (xid fixed: the tests read no reply by it). */
const request = (type: ClientMessageType, spec: ClientMessageSpec) => buildClientMessage(type, { xid: 1, ...spec });
const handle = (packet: DhcpPacket) => service.handle(packet, { port: 67 });

test('known MAC: OFFER of its reservation with the network options, then ACK', async () => {
  const offer = (await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:0a' })))!;
  assert.equal(messageType(offer.packet), MessageType.Offer);
  assert.equal(offer.packet.yiaddr, '10.9.0.10');
  assert.deepEqual(offer.to, { address: '255.255.255.255', port: 68 });
  assert.equal(formatIpv4(ipv4.decode(offer.packet.options.get(OptionCode.SubnetMask)!)), '255.255.255.0');
  assert.equal(offer.packet.options.get(OptionCode.HostName)!.toString(), 'known');
  assert.equal(offer.packet.options.get(OptionCode.LeaseTime)!.readUInt32BE(0), 300);
  assert.equal(offer.packet.options.get(OptionCode.RenewalTime)!.readUInt32BE(0), 150);
  const ack = (await handle(
    request(MessageType.Request, { mac: '52:54:00:00:00:0a', serverId: SERVER, requestedIp: '10.9.0.10' }),
  ))!;
  assert.equal(messageType(ack.packet), MessageType.Ack);
  const [lease] = await store.db.selectFrom('leases').selectAll().where('ip', '=', '10.9.0.10').execute();
  assert.equal(lease!.state, 'bound');
});

test('SELECTING another server: our offer is withdrawn, no reply', async () => {
  await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:0b' }));
  const reply = await handle(
    request(MessageType.Request, { mac: '52:54:00:00:00:0b', serverId: '10.9.0.99', requestedIp: '10.9.0.100' }),
  );
  assert.equal(reply, undefined);
  assert.equal(service.poolStats().find((p) => p.network === 'n')!.offered, 0);
});

test("INIT-REBOOT with an address that is not the client's is NAKed (broadcast); RENEWING answers to ciaddr", async () => {
  const nak = (await handle(request(MessageType.Request, { mac: '52:54:00:00:00:0a', requestedIp: '10.9.0.11' })))!;
  assert.equal(messageType(nak.packet), MessageType.Nak);
  assert.equal(nak.to.address, '255.255.255.255');
  const renew = (await handle(request(MessageType.Request, { mac: '52:54:00:00:00:0a', ciaddr: '10.9.0.10' })))!;
  assert.equal(messageType(renew.packet), MessageType.Ack);
  assert.deepEqual(renew.to, { address: '10.9.0.10', port: 68 });
});

test('DECLINE takes the address out of the pool; the pool runs dry and says so', async () => {
  const a = (await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:0c' })))!.packet.yiaddr;
  await handle(request(MessageType.Decline, { mac: '52:54:00:00:00:0c', requestedIp: a }));
  const b = (await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:0d' })))!.packet.yiaddr;
  assert.notEqual(b, a);
  assert.equal(
    await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:0e' })),
    undefined,
    'two addresses: one declined, one offered',
  );
  assert.ok(service.stats.poolExhausted >= 1);
});

test("INFORM gets options and no lease; RELEASE frees; relayed requests use giaddr's network and go back to the relay", async () => {
  const inform = (await handle(request(MessageType.Inform, { mac: '52:54:00:00:00:0f', ciaddr: '10.9.0.50' })))!;
  assert.equal(messageType(inform.packet), MessageType.Ack);
  assert.equal(inform.packet.yiaddr, '0.0.0.0');
  assert.equal(inform.packet.options.has(OptionCode.LeaseTime), false);
  assert.deepEqual(inform.to, { address: '10.9.0.50', port: 68 });
  const relayed = (await handle(
    request(MessageType.Discover, {
      mac: '52:54:00:00:00:10',
      giaddr: '10.8.0.1',
      relayAgentInfo: new Map([[1, Buffer.from([0xaa, 0xbb])]]),
    }),
  ))!;
  assert.ok(relayed.packet.yiaddr.startsWith('10.8.0.'));
  assert.deepEqual(relayed.to, { address: '10.8.0.1', port: 67 });
  assert.deepEqual(
    relayed.packet.options.get(OptionCode.RelayAgentInfo),
    Buffer.from([1, 2, 0xaa, 0xbb]),
    'option 82 echoed',
  );
  const ack = (await handle(
    request(MessageType.Request, {
      mac: '52:54:00:00:00:10',
      giaddr: '10.8.0.1',
      serverId: SERVER,
      requestedIp: relayed.packet.yiaddr,
    }),
  ))!;
  assert.equal(messageType(ack.packet), MessageType.Ack);
  await handle(
    request(MessageType.Release, { mac: '52:54:00:00:00:10', ciaddr: relayed.packet.yiaddr, giaddr: '10.8.0.1' }),
  );
  assert.equal(service.poolStats().find((p) => p.network === 'far')!.bound, 0);
  assert.equal(
    await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:11', giaddr: '10.7.0.1' })),
    undefined,
    'unknown relay network: no answer',
  );
});

test('PXE firmware: unknown MAC is recorded as discovered and gets undionly.kpxe; built hosts get no boot file', async () => {
  const pxe = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 };
  const offer = (await handle(
    request(MessageType.Discover, { mac: '52:54:00:00:00:20', giaddr: '10.8.0.1', ...pxe }),
  ))!;
  assert.equal(offer.packet.file, 'undionly.kpxe');
  assert.equal(offer.packet.siaddr, SERVER);
  const discovered = await store.db
    .selectFrom('hosts')
    .select(['hostname', 'build_state'])
    .where('hostname', '=', 'discovered-525400000020')
    .executeTakeFirst();
  assert.equal(discovered?.build_state, 'discovered');
  await store.db.updateTable('hosts').set({ build_state: 'built' }).where('hostname', '=', 'known').execute();
  const built = (await handle(request(MessageType.Discover, { mac: '52:54:00:00:00:0a', ...pxe })))!;
  assert.equal(built.packet.file, '');
  assert.equal(built.packet.options.has(OptionCode.BootFileName), false);
  const ipxe = (await handle(
    request(MessageType.Discover, { mac: '52:54:00:00:00:20', giaddr: '10.8.0.1', ...pxe, userClass: 'iPXE' }),
  ))!;
  assert.equal(
    ipxe.packet.options.get(OptionCode.BootFileName)!.toString(),
    'http://10.9.0.1:8081/boot/${mac:hexhyp}?platform=${platform}',
  );
});

test('a distributed boot node (--networks) answers only its own networks', async () => {
  const scoped = newService({ networks: ['far'] });
  await scoped.start();
  try {
    const before = scoped.stats.noNetwork;
    assert.equal(
      await scoped.handle(request(MessageType.Discover, { mac: '52:54:00:00:0d:01' }), { port: 67 }),
      undefined,
      'its own segment (n) is not one of its networks',
    );
    assert.equal(scoped.stats.noNetwork, before + 1);
    const offer = (await scoped.handle(
      request(MessageType.Discover, { mac: '52:54:00:00:0d:02', giaddr: '10.8.0.1' }),
      {
        port: 67,
      },
    ))!;
    assert.equal(messageType(offer.packet), MessageType.Offer, 'relayed from far: answered');
    assert.match(offer.packet.yiaddr, /^10\.8\.0\./);
  } finally {
    scoped.stop();
  }
});
