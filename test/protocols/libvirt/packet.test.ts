/** The libvirt RPC packet header and the stream framer (src/protocols/libvirt/packet.ts). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  decodePacket,
  encodePacket,
  MessageKind,
  MessageStatus,
  PacketError,
  PacketFramer,
  REMOTE_PROGRAM,
} from '../../../src/protocols/libvirt/packet.ts';
import { XdrWriter } from '../../../src/protocols/xdr/xdr.ts';

const header = (serial: number) => ({
  program: REMOTE_PROGRAM,
  version: 1,
  procedure: 66,
  type: MessageKind.Call,
  serial,
  status: MessageStatus.Ok,
});

test('framing: every recorded packet split at every offset comes out whole and once', () => {
  const packets = [
    encodePacket(header(1)),
    encodePacket(header(2), new XdrWriter().string('qemu:///system').toBuffer()),
    encodePacket(header(3), randomBytes(333)),
  ];
  const stream = Buffer.concat(packets);
  for (let split = 0; split <= stream.length; split++) {
    const framer = new PacketFramer();
    const out = [...framer.push(stream.subarray(0, split)), ...framer.push(stream.subarray(split))];
    assert.deepEqual(
      out.map((p) => p.header.serial),
      [1, 2, 3],
      `split at ${split}`,
    );
    assert.deepEqual(out[2]!.body, packets[2]!.subarray(28));
  }
  // Byte by byte, too.
  const framer = new PacketFramer();
  const out = [...stream].flatMap((byte) => framer.push(Buffer.from([byte])));
  assert.equal(out.length, 3);
  assert.deepEqual(decodePacket(packets[1]!).header, header(2));
});

test('framing refuses impossible lengths', () => {
  assert.throws(() => new PacketFramer().push(Buffer.from([0, 0, 0, 4])), PacketError);
  assert.throws(() => new PacketFramer().push(Buffer.from([0x7f, 0xff, 0xff, 0xff])), PacketError);
});
