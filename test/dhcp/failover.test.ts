/**
 * The DHCP failover pair: RFC 3074 hashing, the state machine on a fake clock, and two DHCP
 * services on one store answering every request as a pair would — each its own clients from its
 * own half of the pool, then the survivor everyone, never one address for two clients.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAILOVER_DEFAULTS, FailoverMachine, type FailoverState } from '../../src/boot/dhcp-failover.ts';
import { DhcpService } from '../../src/boot/dhcp-service.ts';
import { importSiteYaml } from '../../src/import/apply.ts';
import { bucketOwner, loadBalanceHash, RFC3074_MIX_TABLE } from '../../src/protocols/dhcp4/load-balance.ts';
import {
  buildClientMessage,
  type ClientMessageSpec,
  type ClientMessageType,
} from '../../src/protocols/dhcp4/client-message.ts';
import { ipv4 } from '../../src/protocols/dhcp4/option-codecs.ts';
import { formatIpv4 } from '../../src/protocols/ipv4.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { messageType, MessageType } from '../../src/protocols/dhcp4/packet.ts';
import { LeaseWriter } from '../../src/store/lease-writer.ts';
import { openStore, type Store } from '../../src/store/open.ts';

const mac = (i: number) =>
  `02:fa:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
/** A client's message as the pair gets it through the relay at 10.66.0.1. */
const request = (type: ClientMessageType, m: string, spec: Omit<ClientMessageSpec, 'mac'> = {}) =>
  buildClientMessage(type, { mac: m, xid: 7, hops: 1, giaddr: '10.66.0.1', ...spec });

test('RFC 3074: the mixing table is a permutation; buckets split the clients evenly; split 0/256 give one server all', () => {
  assert.deepEqual(
    [...RFC3074_MIX_TABLE].sort((a, b) => a - b),
    Array.from({ length: 256 }, (_, i) => i),
  );
  const key = Buffer.from([0x02, 0xfa, 0, 0, 0, 1]);
  assert.equal(loadBalanceHash(key), loadBalanceHash(Buffer.from(key)), 'deterministic');
  assert.notEqual(loadBalanceHash(key), loadBalanceHash(Buffer.from([0x02, 0xfa, 0, 0, 0, 2])));
  let primary = 0;
  for (let i = 0; i < 10_000; i++)
    if (bucketOwner(loadBalanceHash(Buffer.from(mac(i).replace(/:/g, ''), 'hex')), 128) === 'primary') primary++;
  assert.ok(primary > 4500 && primary < 5500, `primary share ${primary / 100} %`);
  assert.equal(bucketOwner(0, 0), 'secondary');
  assert.equal(bucketOwner(255, 256), 'primary');
});

test('the state machine: recover → normal → communications-interrupted → partner-down → normal', () => {
  const config = { ...FAILOVER_DEFAULTS, role: 'secondary' as const, maxSilenceMs: 3000, partnerDownDelayMs: 5000 };
  const m = new FailoverMachine(config, 0);
  const seen: FailoverState[] = [];
  let reloads = 0;
  m.on('state', (_from, to) => seen.push(to));
  m.on('reload-leases', () => reloads++);
  const client = request(MessageType.Discover, mac(1));
  assert.equal(m.serves(client), false, 'recover: serves nobody');
  m.heard('recover', 500);
  assert.equal(m.state, 'normal');
  assert.equal(reloads, 1, 'leaving recover reloads the leases');
  m.tick(3000);
  assert.equal(m.state, 'normal', 'heard 2.5 s ago');
  m.tick(3600);
  assert.equal(m.state, 'communications-interrupted');
  assert.equal(m.maxLeaseSeconds(), FAILOVER_DEFAULTS.mcltSeconds);
  assert.equal(m.poolPart(), 'upper');
  m.tick(8000);
  assert.equal(m.state, 'communications-interrupted', 'the delay is not over');
  m.tick(8700);
  assert.equal(m.state, 'partner-down');
  assert.equal(reloads, 2, 'taking over reloads the leases');
  assert.equal(m.poolPart(), 'all');
  assert.equal(m.serves(client), true);
  m.heard('recover', 9000);
  assert.equal(m.state, 'normal');
  assert.deepEqual(seen, ['normal', 'communications-interrupted', 'partner-down', 'normal']);

  // A server starting while its partner has taken over waits until the partner stands down.
  const late = new FailoverMachine({ ...config, role: 'primary' }, 0);
  late.heard('partner-down', 100);
  assert.equal(late.state, 'recover');
  late.heard('normal', 1100);
  assert.equal(late.state, 'normal');
  // Alone from the start: after the silence and the delay it serves everyone.
  const alone = new FailoverMachine(config, 0);
  alone.tick(3500);
  alone.tick(9000);
  assert.equal(alone.state, 'partner-down');
});

test("normal: own clients only, and the partner's once their secs reach lb-max-seconds", () => {
  const m = new FailoverMachine({ ...FAILOVER_DEFAULTS, role: 'primary' }, 0);
  m.heard('normal', 1);
  let own = 0;
  for (let i = 0; i < 200; i++) {
    const packet = request(MessageType.Discover, mac(i));
    const mine = bucketOwner(loadBalanceHash(packet.chaddr.subarray(0, 6)), 128) === 'primary';
    assert.equal(m.serves(packet), mine, mac(i));
    if (mine) own++;
    assert.equal(
      m.serves(request(MessageType.Discover, mac(i), { secs: 3 })),
      true,
      'a client waiting 3 s is answered by either',
    );
  }
  assert.ok(own > 70 && own < 130);
});

let store: Store;
let primary: DhcpService;
let secondary: DhcpService;
let primaryState: FailoverMachine;
let secondaryState: FailoverMachine;

before(async () => {
  store = await openStore({ dataDir: 'memory://' });
  await importSiteYaml(
    store.db,
    'sites:\n  - name: s\n    networks:\n      - { name: boot, cidr: 10.65.0.0/24 }\n      - { name: hv, cidr: 10.66.0.0/24, gateway: 10.66.0.1, dynamicRange: { start: 10.66.0.10, end: 10.66.0.249 }, leaseSeconds: 600 }\n',
  );
  const config = { ...FAILOVER_DEFAULTS, mcltSeconds: 300 };
  primaryState = new FailoverMachine({ ...config, role: 'primary' }, Date.now());
  secondaryState = new FailoverMachine({ ...config, role: 'secondary' }, Date.now());
  primary = new DhcpService({
    db: store.db,
    writer: new LeaseWriter(store.db),
    serverId: '10.65.0.1',
    mode: 'full',
    bootBaseUrl: 'http://10.65.0.1:8081',
    failover: primaryState,
  });
  secondary = new DhcpService({
    db: store.db,
    writer: new LeaseWriter(store.db),
    serverId: '10.65.0.2',
    mode: 'full',
    bootBaseUrl: 'http://10.65.0.2:8081',
    failover: secondaryState,
  });
  await primary.start();
  await secondary.start();
  primaryState.heard('recover', Date.now());
  secondaryState.heard('normal', Date.now());
});
after(async () => {
  primary.stop();
  secondary.stop();
  await store.close();
});

/** A client's DORA against both servers, as a broadcast reaches both: returns who answered and the address. */
async function dora(m: string, servers: DhcpService[]): Promise<{ by: string; ip: string } | undefined> {
  const offers = (await Promise.all(servers.map((s) => s.handle(request(MessageType.Discover, m), { port: 67 }))))
    .map((r, i) => ({ r, s: servers[i]! }))
    .filter((x) => x.r);
  assert.ok(offers.length <= 1, `${m}: ${offers.length} servers answered`);
  const offer = offers[0];
  if (!offer) return undefined;
  const serverId = ipv4.decode(offer.r!.packet.options.get(OptionCode.ServerId)!);
  const acks = await Promise.all(
    servers.map((s) =>
      s.handle(
        request(MessageType.Request, m, { serverId: formatIpv4(serverId), requestedIp: offer.r!.packet.yiaddr }),
        { port: 67 },
      ),
    ),
  );
  const ack = acks.find((a) => a && messageType(a.packet) === MessageType.Ack);
  assert.ok(ack, `${m}: ACKed`);
  return { by: formatIpv4(serverId), ip: ack!.packet.yiaddr };
}

test('a pair on one store: each answers its own clients from its own half; the survivor takes over everyone, never reusing an address', async () => {
  const owner = new Map<string, string>();
  const served = { '10.65.0.1': 0, '10.65.0.2': 0 } as Record<string, number>;
  for (let i = 0; i < 100; i++) {
    const result = (await dora(mac(i), [primary, secondary]))!;
    served[result.by]! += 1;
    const last = Number(result.ip.split('.')[3]);
    assert.equal(
      result.by === '10.65.0.1' ? last <= 129 : last >= 130,
      true,
      `${result.by} gave ${result.ip}: its own half`,
    );
    assert.ok(!owner.has(result.ip), `${result.ip} given twice`);
    owner.set(result.ip, mac(i));
  }
  assert.ok(served['10.65.0.1']! > 30 && served['10.65.0.2']! > 30, JSON.stringify(served));

  // The primary dies: the secondary hears nothing, then takes over after the delay.
  const t = Date.now();
  secondaryState.tick(t + FAILOVER_DEFAULTS.maxSilenceMs + 100);
  assert.equal(secondaryState.state, 'communications-interrupted');
  secondaryState.tick(t + FAILOVER_DEFAULTS.maxSilenceMs + FAILOVER_DEFAULTS.partnerDownDelayMs + 200);
  assert.equal(secondaryState.state, 'partner-down');
  await new Promise((r) => setTimeout(r, 200)); // leases reloaded from the store
  // The primary's clients renew with the secondary and keep their addresses …
  for (const [ip, m] of owner) {
    const renew = (await secondary.handle(request(MessageType.Request, m, { ciaddr: ip }), { port: 67 }))!;
    assert.equal(messageType(renew.packet), MessageType.Ack, `${m} renews ${ip}`);
    assert.equal(renew.packet.yiaddr, ip);
    assert.equal(
      renew.packet.options.get(OptionCode.LeaseTime)!.readUInt32BE(0),
      300,
      'leases capped at MCLT while the partner is down',
    );
  }
  // … and 100 new clients get addresses nobody holds, from either half.
  for (let i = 100; i < 200; i++) {
    const result = (await dora(mac(i), [secondary]))!;
    assert.equal(result.by, '10.65.0.2');
    assert.ok(!owner.has(result.ip), `${result.ip} was already ${owner.get(result.ip)}'s`);
    owner.set(result.ip, mac(i));
  }
  const leases = await store.db.selectFrom('leases').select(['ip', 'mac']).where('state', '=', 'bound').execute();
  assert.equal(new Set(leases.map((l) => l.ip)).size, leases.length);
  assert.equal(leases.length, 200, 'every ACKed lease is in the store');
  for (const l of leases) assert.equal(owner.get(l.ip.replace(/\/32$/, '')), l.mac);
});
