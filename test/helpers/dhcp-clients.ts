/** Client messages the DHCP tests share, built with src/protocols/dhcp4/client-message.ts. */
import { randomBytes } from 'node:crypto';
import { buildClientMessage, type ClientMessageSpec } from '../../src/protocols/dhcp4/client-message.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { encodePacket, MessageType, type DhcpPacket } from '../../src/protocols/dhcp4/packet.ts';

/** Options 94 (network interface) and 97 (machine id) a PXE ROM sends, which no typed field covers. */
export const PXE_ROM_OPTIONS: readonly (readonly [number, Buffer])[] = [
  [OptionCode.ClientNdi, Buffer.from([1, 2, 1])],
  [OptionCode.ClientMachineId, Buffer.from([0, ...randomBytes(16)])],
];

/** A BIOS PXE ROM's DISCOVER through a relay; `spec` replaces or adds fields. */
export function pxeRomDiscover(spec: Partial<ClientMessageSpec> = {}): DhcpPacket {
  return buildClientMessage(MessageType.Discover, {
    mac: '52:54:00:aa:bb:01',
    xid: 0x12345678,
    secs: 4,
    broadcast: true,
    giaddr: '10.1.0.2',
    parameterRequestList: [1, 3, 6, 43, 60, 66, 67],
    vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
    arch: 0,
    options: PXE_ROM_OPTIONS,
    ...spec,
  });
}

/** Seeds for mutatedDatagrams: the PXE ROM's DISCOVER, as iPXE through a relay, and with option overload. */
export function pxeFuzzSeeds(): Buffer[] {
  return [
    encodePacket(pxeRomDiscover()),
    encodePacket(pxeRomDiscover({ userClass: 'iPXE', relayAgentInfo: new Map([[1, Buffer.from([3, 4])]]) })),
    encodePacket(pxeRomDiscover({ options: [...PXE_ROM_OPTIONS, [OptionCode.Overload, Buffer.from([3])]] })),
  ];
}
