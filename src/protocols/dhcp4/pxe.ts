/**
 * PXE pieces of a proxyDHCP answer (PXE 2.1 spec): option 43 with PXE_DISCOVERY_CONTROL
 * (sub-option 6) = 8 — boot from the file named in this offer, no boot server discovery.
 */
import { subOptions } from './option-codecs.ts';

export const PXE_DISCOVERY_CONTROL = 6;
export const USE_BOOT_FILE_IN_OFFER = 8;

export function pxeVendorOptions(): Buffer {
  return subOptions.encode(new Map([[PXE_DISCOVERY_CONTROL, Buffer.from([USE_BOOT_FILE_IN_OFFER])]]));
}
