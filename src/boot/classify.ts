/**
 * Who is asking to boot, from the DHCP request: PXE firmware (BIOS or UEFI, by option 93),
 * iPXE (user class "iPXE", option 77, or its option 175), or UEFI HTTP boot (vendor class HTTPClient).
 */
import type { DhcpPacket } from '../protocols/dhcp4/packet.ts';
import { text, u16List, userClass, type OptionCodec } from '../protocols/dhcp4/option-codecs.ts';
import { OptionCode } from '../protocols/dhcp4/options.ts';

/** RFC 4578 / IANA processor architecture types (option 93). */
export const enum ClientArch {
  X86Bios = 0,
  EfiIa32 = 6,
  EfiBc = 7,
  EfiX64 = 9,
  EfiArm32 = 10,
  EfiArm64 = 11,
  EfiX64Http = 16,
  EfiArm64Http = 19,
}

export type Firmware = 'bios' | 'efi-x64' | 'efi-ia32' | 'efi-arm64' | 'unknown';

export interface ClientClass {
  /** Network-boot firmware or iPXE asking (as opposed to an OS's DHCP client). */
  readonly netboot: boolean;
  readonly firmware: Firmware;
  readonly ipxe: boolean;
  readonly httpBoot: boolean;
}

/** An option's value by its codec; an absent or malformed one is `fallback` (an absent one costs no exception). */
function read<T>(packet: DhcpPacket, code: OptionCode, codec: OptionCodec<T>, fallback: T): T {
  const value = packet.options.get(code);
  if (value === undefined) return fallback;
  try {
    return codec.decode(value);
  } catch {
    return fallback;
  }
}

export function classifyClient(packet: DhcpPacket): ClientClass {
  const vendor = read(packet, OptionCode.VendorClass, text, '');
  const arches = read<number[]>(packet, OptionCode.ClientArch, u16List, []);
  const classes = read<string[]>(packet, OptionCode.UserClass, userClass, []);
  const ipxe = classes.includes('iPXE') || packet.options.has(OptionCode.IpxeEncapsulated);
  const httpBoot =
    vendor.startsWith('HTTPClient') ||
    arches.includes(ClientArch.EfiX64Http) ||
    arches.includes(ClientArch.EfiArm64Http);
  const netboot = ipxe || httpBoot || vendor.startsWith('PXEClient') || arches.length > 0;
  const arch = arches[0];
  // Option 7 "EFI BC" is what x86-64 UEFI firmware sends in practice (RFC 4578 errata).
  const firmware: Firmware =
    arch === ClientArch.X86Bios
      ? 'bios'
      : arch === ClientArch.EfiX64 || arch === ClientArch.EfiBc || arch === ClientArch.EfiX64Http
        ? 'efi-x64'
        : arch === ClientArch.EfiIa32
          ? 'efi-ia32'
          : arch === ClientArch.EfiArm64 || arch === ClientArch.EfiArm64Http
            ? 'efi-arm64'
            : 'unknown';
  return { netboot, firmware, ipxe, httpBoot };
}

export interface DhcpBootAnswer {
  /** Option 67 / file field; undefined = no boot file (the machine goes on to its next boot device). */
  readonly bootFile?: string;
  /** Option 60 in the reply (UEFI HTTP boot requires "HTTPClient"). */
  readonly vendorClass?: string;
}

/**
 * What a network-booting machine is told by DHCP. iPXE gets its script URL — never an iPXE
 * binary again, which would loop. Firmware gets the iPXE binary for its architecture. Hosts that are
 * built (and not marked for rebuild) get nothing, so their firmware moves on to the disk.
 */
export function dhcpBootAnswer(
  client: ClientClass,
  host: { buildState: string } | undefined,
  urls: { script: string; httpIpxeEfi: string },
): DhcpBootAnswer {
  if (!client.netboot) return {};
  if (host?.buildState === 'built') return {};
  if (client.ipxe) return { bootFile: urls.script };
  if (client.httpBoot)
    return client.firmware === 'efi-x64' ? { bootFile: urls.httpIpxeEfi, vendorClass: 'HTTPClient' } : {};
  switch (client.firmware) {
    case 'bios':
      return { bootFile: 'undionly.kpxe' };
    case 'efi-x64':
      return { bootFile: 'ipxe.efi' };
    default:
      return {}; // no iPXE build for this architecture is served
  }
}
