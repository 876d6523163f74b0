/** The client message builder, read back through the decoder and the accessors the server uses. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientIdHex, parameterRequestList, requestAddresses } from '../../../src/protocols/dhcp4/accessors.ts';
import {
  buildClientMessage,
  ClientMessageError,
  MAX_CLIENT_MESSAGE_LENGTH,
} from '../../../src/protocols/dhcp4/client-message.ts';
import { subOptions, text, u16, u16List, userClass } from '../../../src/protocols/dhcp4/option-codecs.ts';
import { OptionCode } from '../../../src/protocols/dhcp4/options.ts';
import {
  BOOTREQUEST,
  BROADCAST_FLAG,
  clientMac,
  decodePacket,
  encodePacket,
  messageType,
  MessageType,
} from '../../../src/protocols/dhcp4/packet.ts';
import { formatIpv4 } from '../../../src/protocols/ipv4.ts';

const relayInfo = new Map([
  [1, Buffer.from('eth0')],
  [2, Buffer.from([0xab, 0xcd])],
]);

test('every field round-trips through encodePacket and decodePacket', () => {
  const packet = buildClientMessage(MessageType.Request, {
    mac: '52:54:00:aa:bb:01',
    xid: 0xfedcba98,
    secs: 4,
    hops: 1,
    broadcast: true,
    ciaddr: '10.1.0.5',
    giaddr: '10.1.0.2',
    requestedIp: '10.1.0.7',
    serverId: '10.1.0.1',
    clientId: Buffer.from('01525400aabb01', 'hex'),
    hostName: 'node-1',
    parameterRequestList: [1, 3, 6, 43, 66, 67],
    maxMessageSize: 1260,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
    userClass: ['iPXE', 'kvmfleet'],
    arch: [7, 9],
    relayAgentInfo: relayInfo,
    options: [[224, Buffer.from('raw')]],
  });
  const decoded = decodePacket(encodePacket(packet));
  assert.deepEqual(
    { ...decoded, options: decoded.options.entries() },
    { ...packet, options: packet.options.entries() },
  );
  assert.equal(decoded.op, BOOTREQUEST);
  assert.equal(decoded.xid, 0xfedcba98);
  assert.equal(decoded.flags, BROADCAST_FLAG);
  assert.equal(decoded.hops, 1);
  assert.equal(messageType(decoded), MessageType.Request);
  assert.equal(clientMac(decoded), '52:54:00:aa:bb:01');
  const at = requestAddresses(decoded);
  assert.deepEqual([at.ciaddr, at.giaddr, at.requested!, at.server!].map(formatIpv4), [
    '10.1.0.5',
    '10.1.0.2',
    '10.1.0.7',
    '10.1.0.1',
  ]);
  assert.equal(clientIdHex(decoded), '01525400aabb01');
  assert.deepEqual(parameterRequestList(decoded), [1, 3, 6, 43, 66, 67]);
  const option = (code: number) => decoded.options.get(code)!;
  assert.equal(text.decode(option(OptionCode.HostName)), 'node-1');
  assert.equal(u16.decode(option(OptionCode.MaxMessageSize)), 1260);
  assert.equal(text.decode(option(OptionCode.VendorClass)), 'PXEClient:Arch:00007:UNDI:003016');
  assert.deepEqual(userClass.decode(option(OptionCode.UserClass)), ['iPXE', 'kvmfleet']);
  assert.deepEqual(u16List.decode(option(OptionCode.ClientArch)), [7, 9]);
  assert.deepEqual(subOptions.decode(option(OptionCode.RelayAgentInfo)), relayInfo);
  assert.deepEqual(option(224), Buffer.from('raw'));
});

test('defaults: a bare DISCOVER from a client on the segment, only option 53, padded to 300 bytes', () => {
  const packet = buildClientMessage(MessageType.Discover, { mac: '52-54-00-aa-bb-02' });
  assert.deepEqual(packet.options.codes(), [OptionCode.MessageType]);
  assert.deepEqual(
    [packet.hops, packet.secs, packet.flags, packet.ciaddr, packet.giaddr],
    [0, 0, 0, '0.0.0.0', '0.0.0.0'],
  );
  assert.ok(packet.xid >= 0 && packet.xid <= 0xffffffff);
  assert.equal(encodePacket(packet).length, 300);
  assert.equal(clientMac(packet), '52:54:00:aa:bb:02');
});

test('user class: a string is sent bare, as iPXE sends it; a list as RFC 3004 items; one arch is one u16', () => {
  const bare = buildClientMessage(MessageType.Discover, { mac: '525400aabb03', userClass: 'iPXE', arch: 0 });
  assert.deepEqual(bare.options.get(OptionCode.UserClass), Buffer.from('iPXE'));
  assert.deepEqual(bare.options.get(OptionCode.ClientArch), Buffer.from([0, 0]));
  const items = buildClientMessage(MessageType.Discover, { mac: '525400aabb03', userClass: ['iPXE'] });
  assert.deepEqual(items.options.get(OptionCode.UserClass), Buffer.from([4, ...Buffer.from('iPXE')]));
});

test('every client message type, each with its option 53', () => {
  for (const type of [
    MessageType.Discover,
    MessageType.Request,
    MessageType.Decline,
    MessageType.Release,
    MessageType.Inform,
  ] as const) {
    const decoded = decodePacket(encodePacket(buildClientMessage(type, { mac: '52:54:00:aa:bb:04' })));
    assert.equal(messageType(decoded), type);
  }
});

test('a long option is split per RFC 3396 and joined again by the decoder', () => {
  const long = Buffer.alloc(600, 0x61);
  const decoded = decodePacket(
    encodePacket(buildClientMessage(MessageType.Discover, { mac: '52:54:00:aa:bb:05', options: [[224, long]] })),
  );
  assert.deepEqual(decoded.options.get(224), long);
});

test('refused with a ClientMessageError that says why: too many options, a code twice, bad fields', () => {
  const mac = '52:54:00:aa:bb:06';
  const many = Array.from({ length: 150 }, (_, i) => [100 + i, Buffer.alloc(8)] as const);
  assert.throws(
    () => buildClientMessage(MessageType.Discover, { mac, options: many }),
    (error: unknown) =>
      error instanceof ClientMessageError &&
      error.message.includes(`exceeds ${MAX_CLIENT_MESSAGE_LENGTH}`) &&
      error.message.includes('151 options'),
  );
  // Just fits: header, cookie, option 53 (3 bytes), END and one option of the rest.
  const room = MAX_CLIENT_MESSAGE_LENGTH - 240 - 3 - 1;
  const fits = buildClientMessage(MessageType.Discover, { mac, options: [[224, Buffer.alloc(room - 2 * 5)]] });
  assert.equal(encodePacket(fits).length, MAX_CLIENT_MESSAGE_LENGTH);
  assert.throws(
    () => buildClientMessage(MessageType.Discover, { mac, options: [[224, Buffer.alloc(room - 2 * 5 + 1)]] }),
    ClientMessageError,
  );
  const refused: [string, Parameters<typeof buildClientMessage>[1], RegExp][] = [
    [
      'typed and raw',
      { mac, vendorClass: 'PXEClient', options: [[OptionCode.VendorClass, Buffer.from('x')]] },
      /option 60 given twice/,
    ],
    [
      'raw twice',
      {
        mac,
        options: [
          [224, Buffer.from('a')],
          [224, Buffer.from('b')],
        ],
      },
      /option 224 given twice/,
    ],
    ['53 raw', { mac, options: [[OptionCode.MessageType, Buffer.from([1])]] }, /option 53 given twice/],
    ['pad', { mac, options: [[0, Buffer.from('a')]] }, /option code 0 is not 1\.\.254/],
    ['end', { mac, options: [[255, Buffer.from('a')]] }, /option code 255/],
    ['short MAC', { mac: '52:54:00:aa:bb' }, /bad MAC/],
    ['xid', { mac, xid: 2 ** 32 }, /xid 4294967296 is not 0\.\.4294967295/],
    ['secs', { mac, secs: -1 }, /secs -1/],
    ['hops', { mac, hops: 256 }, /hops 256/],
    ['giaddr', { mac, giaddr: '10.1.0' }, /giaddr "10\.1\.0" is not an IPv4 address/],
    ['requested', { mac, requestedIp: '10.1.0.256' }, /requestedIp/],
    ['client id', { mac, clientId: Buffer.from([1]) }, /client identifier/],
    ['prl code', { mac, parameterRequestList: [1, 256] }, /requested option 256 is not 0\.\.255/],
    ['user class item', { mac, userClass: ['iPXE', 'x'.repeat(256)] }, /user class item of 256 bytes/],
    ['empty user class item', { mac, userClass: [''] }, /user class item of 0 bytes/],
    ['sub-option', { mac, relayAgentInfo: new Map([[1, Buffer.alloc(300)]]) }, /sub-option 1 of 300 bytes/],
    [
      '82 twice',
      { mac, relayAgentInfo: relayInfo, options: [[OptionCode.RelayAgentInfo, Buffer.from([1, 1, 1])]] },
      /option 82 given twice/,
    ],
  ];
  for (const [name, spec, why] of refused)
    assert.throws(
      () => buildClientMessage(MessageType.Discover, spec),
      (error: unknown) => {
        assert.ok(error instanceof ClientMessageError, `${name}: ${String(error)}`);
        assert.match(error.message, why, name);
        return true;
      },
    );
});
