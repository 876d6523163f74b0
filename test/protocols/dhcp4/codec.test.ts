import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { OPTION_CODECS, userClass } from '../../../src/protocols/dhcp4/option-codecs.ts';
import { DhcpDecodeError, DhcpOptions, OptionCode } from '../../../src/protocols/dhcp4/options.ts';
import {
  clientMac,
  decodePacket,
  encodePacket,
  messageType,
  MessageType,
  type DhcpPacket,
} from '../../../src/protocols/dhcp4/packet.ts';
import { PXE_ROM_OPTIONS, pxeFuzzSeeds, pxeRomDiscover } from '../../helpers/dhcp-clients.ts';
import { mutatedDatagrams } from '../../helpers/dhcp-mutations.ts';

/** The PXE ROM's DISCOVER with `extra` raw options after its own. */
const pxeDiscover = (extra: [number, Buffer][] = []): DhcpPacket =>
  pxeRomDiscover({ options: [...PXE_ROM_OPTIONS, ...extra] });

test('a PXE DISCOVER round-trips: decode(encode(p)) equals p, and re-encodes to the same bytes', () => {
  const packet = pxeDiscover([[OptionCode.RelayAgentInfo, Buffer.from([1, 3, 0x65, 0x74, 0x30, 2, 2, 0xab, 0xcd])]]);
  const bytes = encodePacket(packet);
  assert.ok(bytes.length >= 300, 'padded to the BOOTP minimum');
  const decoded = decodePacket(bytes);
  assert.deepEqual(
    { ...decoded, options: decoded.options.entries() },
    { ...packet, options: packet.options.entries() },
  );
  assert.deepEqual(encodePacket(decoded), bytes);
  assert.equal(clientMac(decoded), '52:54:00:aa:bb:01');
  assert.equal(messageType(decoded), MessageType.Discover);
});

test('every option kind round-trips with its codec, and encodingLength is exact', () => {
  const samples: Record<string, unknown> = {
    ipv4: 0x0a010203, // 10.1.2.3
    'ipv4-list': [0x0a000001, 0x0a000002],
    u8: 5,
    u16: 1500,
    u32: 86400,
    text: 'http://boot/boot/${mac:hexhyp}',
    'code-list': [1, 3, 6, 15, 66, 67],
    'u16-list': [7, 9],
    'user-class': ['iPXE', 'kvmfleet'],
    'sub-options': new Map([
      [1, Buffer.from('eth0')],
      [2, Buffer.from([0xab])],
    ]),
  };
  for (const [code, codec] of OPTION_CODECS) {
    const value = samples[codec.kind];
    assert.ok(value !== undefined, `sample for ${codec.kind}`);
    const encoded = codec.encode(value);
    assert.equal(codec.encodingLength(value), encoded.length, `option ${code} length`);
    assert.deepEqual(codec.decode(encoded), value, `option ${code}`);
    assert.deepEqual(codec.encode(codec.decode(encoded)), encoded);
    // And inside a whole packet, at a non-zero offset.
    const packet = pxeDiscover();
    packet.options.set(code, encoded);
    assert.deepEqual(codec.decode(decodePacket(encodePacket(packet)).options.get(code)!), value);
  }
});

test('user class: iPXE sends a bare string, RFC 3004 length-prefixed items are also understood', () => {
  assert.deepEqual(userClass.decode(Buffer.from('iPXE')), ['iPXE']);
  assert.deepEqual(userClass.decode(Buffer.from([4, ...Buffer.from('iPXE')])), ['iPXE']);
});

test('RFC 3396: a 600-byte option is split into 255-byte pieces and joined again; unknown options survive', () => {
  const long = randomBytes(600);
  const packet = pxeDiscover([
    [224, long],
    [OptionCode.BootFileName, Buffer.alloc(0)],
  ]);
  const bytes = encodePacket(packet);
  const decoded = decodePacket(bytes);
  assert.deepEqual(decoded.options.get(224), long);
  assert.deepEqual(decoded.options.get(OptionCode.BootFileName), Buffer.alloc(0));
  assert.equal(packet.options.encodingLength(), packet.options.encode().length);
  // Three TLVs of code 224 in the wire form.
  let count = 0;
  const opts = bytes.subarray(240);
  for (let i = 0; i < opts.length && opts[i] !== 255;) {
    if (opts[i] === 0) {
      i++;
      continue;
    }
    if (opts[i] === 224) count++;
    i += 2 + opts[i + 1]!;
  }
  assert.equal(count, 3);
});

test('option 82 is encoded last whatever the order it was added in', () => {
  const options = new DhcpOptions()
    .set(OptionCode.RelayAgentInfo, Buffer.from([1, 1, 9]))
    .set(OptionCode.MessageType, Buffer.from([2]))
    .set(OptionCode.ServerId, Buffer.from([10, 0, 0, 1]));
  const wire = options.encode();
  assert.equal(wire[wire.length - 1], 255);
  assert.deepEqual([...wire.subarray(wire.length - 6, wire.length - 1)], [82, 3, 1, 1, 9]);
});

test('option overload (52) moves options into the file and sname fields', () => {
  const bytes = encodePacket(pxeDiscover([[OptionCode.Overload, Buffer.from([1])]]));
  Buffer.from([OptionCode.HostName, 3, ...Buffer.from('abc'), 255]).copy(bytes, 108);
  const decoded = decodePacket(bytes);
  assert.equal(decoded.options.get(OptionCode.HostName)?.toString(), 'abc');
  assert.equal(decoded.file, '');
});

test('malformed packets are DhcpDecodeErrors', () => {
  const good = encodePacket(pxeDiscover());
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['short', good.subarray(0, 200)],
    ['no cookie', Buffer.concat([good.subarray(0, 236), Buffer.from([1, 2, 3, 4]), good.subarray(240)])],
    ['bad op', Buffer.concat([Buffer.from([7]), good.subarray(1)])],
    ['hlen 17', Buffer.concat([good.subarray(0, 2), Buffer.from([17]), good.subarray(3)])],
    ['option past the end', Buffer.concat([good.subarray(0, 240), Buffer.from([12, 50, 1, 2])])],
    ['length byte missing', Buffer.concat([good.subarray(0, 240), Buffer.from([12])])],
  ];
  for (const [name, bytes] of cases) assert.throws(() => decodePacket(bytes), DhcpDecodeError, name);
});

test('fuzz: 1 000 000 random and mutated packets — decoding throws nothing but DhcpDecodeError', () => {
  let decoded = 0;
  for (const packet of mutatedDatagrams(pxeFuzzSeeds(), 1_000_000)) {
    try {
      const p = decodePacket(packet);
      decoded++;
      messageType(p);
      clientMac(p);
    } catch (error) {
      if (!(error instanceof DhcpDecodeError)) throw error;
    }
  }
  assert.ok(decoded > 100_000, `mutated packets still decode (${decoded})`);
});
