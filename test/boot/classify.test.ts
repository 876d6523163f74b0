/** Who is asking to boot, and what DHCP tells it (src/boot/classify.ts), from PXE DISCOVERs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyClient, dhcpBootAnswer, type DhcpBootAnswer } from '../../src/boot/classify.ts';
import type { ClientMessageSpec } from '../../src/protocols/dhcp4/client-message.ts';
import { DhcpDecodeError } from '../../src/protocols/dhcp4/options.ts';
import { decodePacket, type DhcpPacket } from '../../src/protocols/dhcp4/packet.ts';
import { pxeFuzzSeeds, pxeRomDiscover } from '../helpers/dhcp-clients.ts';
import { mutatedDatagrams } from '../helpers/dhcp-mutations.ts';

const urls = { script: 'http://boot/boot/${mac:hexhyp}?platform=${platform}', httpIpxeEfi: 'http://boot/ipxe.efi' };
const answerFor = (spec: Partial<ClientMessageSpec>, host?: { buildState: string }) =>
  dhcpBootAnswer(classifyClient(pxeRomDiscover(spec)), host, urls);

test('boot answers: BIOS → undionly.kpxe, UEFI x64 → ipxe.efi, iPXE → script URL, HTTP boot → URL + HTTPClient', () => {
  const cases: [string, Partial<ClientMessageSpec>, { buildState: string } | undefined, DhcpBootAnswer][] = [
    ['BIOS', { arch: 0 }, undefined, { bootFile: 'undionly.kpxe' }],
    ['UEFI (EFI BC)', { arch: 7 }, undefined, { bootFile: 'ipxe.efi' }],
    ['UEFI x64', { arch: 9 }, undefined, { bootFile: 'ipxe.efi' }],
    ['iPXE on BIOS', { arch: 0, userClass: 'iPXE' }, undefined, { bootFile: urls.script }],
    ['iPXE is never handed iPXE again', { arch: 9, userClass: 'iPXE' }, undefined, { bootFile: urls.script }],
    [
      'UEFI HTTP boot',
      { arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003000' },
      undefined,
      { bootFile: urls.httpIpxeEfi, vendorClass: 'HTTPClient' },
    ],
    ['no ARM64 iPXE is served', { arch: 11 }, undefined, {}],
    ['built hosts boot their disk', { arch: 0 }, { buildState: 'built' }, {}],
    ['a ready host is installed', { arch: 0 }, { buildState: 'ready' }, { bootFile: 'undionly.kpxe' }],
    ['an OS DHCP client gets no boot file', { vendorClass: undefined, arch: undefined }, undefined, {}],
  ];
  for (const [name, spec, host, answer] of cases) assert.deepEqual(answerFor(spec, host), answer, name);
});

test('fuzz: 1 000 000 random and mutated packets — classifying and answering whatever decodes throws nothing', () => {
  let classified = 0;
  for (const packet of mutatedDatagrams(pxeFuzzSeeds(), 1_000_000)) {
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
