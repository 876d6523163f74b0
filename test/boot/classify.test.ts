/** Who is asking to boot, and what DHCP tells it (src/boot/classify.ts), from PXE DISCOVERs. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { classifyClient, dhcpBootAnswer } from '../../src/boot/classify.ts';
import { DhcpDecodeError, DhcpOptions, OptionCode } from '../../src/protocols/dhcp4/options.ts';
import {
  BOOTREQUEST,
  decodePacket,
  encodePacket,
  MessageType,
  type DhcpPacket,
} from '../../src/protocols/dhcp4/packet.ts';
import { mutatedDatagrams } from '../helpers/dhcp-mutations.ts';

function pxeDiscover(extra: [number, Buffer][] = []): DhcpPacket {
  const options = new DhcpOptions()
    .set(OptionCode.MessageType, Buffer.from([MessageType.Discover]))
    .set(OptionCode.ParameterRequestList, Buffer.from([1, 3, 6, 43, 60, 66, 67]))
    .set(OptionCode.VendorClass, Buffer.from('PXEClient:Arch:00000:UNDI:002001'))
    .set(OptionCode.ClientArch, Buffer.from([0, 0]))
    .set(OptionCode.ClientNdi, Buffer.from([1, 2, 1]))
    .set(OptionCode.ClientMachineId, Buffer.from([0, ...randomBytes(16)]));
  for (const [code, value] of extra) options.set(code, value);
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x12345678,
    secs: 4,
    flags: 0x8000,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '10.1.0.2',
    chaddr: Buffer.from('525400aabb01' + '00'.repeat(10), 'hex'),
    sname: '',
    file: '',
    options,
  };
}

const urls = { script: 'http://boot/boot/${mac:hexhyp}?platform=${platform}', httpIpxeEfi: 'http://boot/ipxe.efi' };
const answerFor = (extra: [number, Buffer][], host?: { buildState: string }) => {
  const packet = pxeDiscover(extra);
  return dhcpBootAnswer(classifyClient(packet), host, urls);
};
const arch = (n: number) => Buffer.from([n >> 8, n & 255]);

test('boot answers: BIOS → undionly.kpxe, UEFI x64 → ipxe.efi, iPXE → script URL, HTTP boot → URL + HTTPClient', () => {
  assert.deepEqual(answerFor([[OptionCode.ClientArch, arch(0)]]), { bootFile: 'undionly.kpxe' });
  assert.deepEqual(answerFor([[OptionCode.ClientArch, arch(7)]]), { bootFile: 'ipxe.efi' });
  assert.deepEqual(answerFor([[OptionCode.ClientArch, arch(9)]]), { bootFile: 'ipxe.efi' });
  assert.deepEqual(
    answerFor([
      [OptionCode.ClientArch, arch(0)],
      [OptionCode.UserClass, Buffer.from('iPXE')],
    ]),
    { bootFile: urls.script },
  );
  assert.deepEqual(
    answerFor([
      [OptionCode.ClientArch, arch(9)],
      [OptionCode.UserClass, Buffer.from('iPXE')],
    ]),
    { bootFile: urls.script },
    'iPXE is never handed iPXE again',
  );
  assert.deepEqual(
    answerFor([
      [OptionCode.ClientArch, arch(16)],
      [OptionCode.VendorClass, Buffer.from('HTTPClient:Arch:00016:UNDI:003000')],
    ]),
    { bootFile: urls.httpIpxeEfi, vendorClass: 'HTTPClient' },
  );
  assert.deepEqual(answerFor([[OptionCode.ClientArch, arch(11)]]), {}, 'no ARM64 iPXE is served');
  assert.deepEqual(
    answerFor([[OptionCode.ClientArch, arch(0)]], { buildState: 'built' }),
    {},
    'built hosts boot their disk',
  );
  assert.deepEqual(answerFor([[OptionCode.ClientArch, arch(0)]], { buildState: 'ready' }), {
    bootFile: 'undionly.kpxe',
  });
  const os = pxeDiscover();
  os.options.delete(OptionCode.VendorClass);
  os.options.delete(OptionCode.ClientArch);
  assert.deepEqual(dhcpBootAnswer(classifyClient(os), undefined, urls), {}, 'an OS DHCP client gets no boot file');
});

test('fuzz: 1 000 000 random and mutated packets — classifying and answering whatever decodes throws nothing', () => {
  const seeds = [
    encodePacket(pxeDiscover()),
    encodePacket(
      pxeDiscover([
        [OptionCode.UserClass, Buffer.from('iPXE')],
        [OptionCode.RelayAgentInfo, Buffer.from([1, 2, 3, 4])],
      ]),
    ),
    encodePacket(pxeDiscover([[OptionCode.Overload, Buffer.from([3])]])),
  ];
  let classified = 0;
  for (const packet of mutatedDatagrams(seeds, 1_000_000)) {
    let p: DhcpPacket;
    try {
      p = decodePacket(packet);
    } catch (error) {
      if (!(error instanceof DhcpDecodeError)) throw error;
      continue;
    }
    dhcpBootAnswer(classifyClient(p), undefined, urls);
    classified++;
  }
  assert.ok(classified > 100_000, `mutated packets still decode and are classified (${classified})`);
});
