/** The URLs a booting machine is given. They are built from the base URL the machine reached us on. */
import { macToHyphens } from '../fleet/mac.ts';

/** What iPXE fetches first: its script, by MAC, telling us its platform (pcbios/efi). */
export const IPXE_SCRIPT_PATH = '/boot/${mac:hexhyp}?platform=${platform}';

export interface BootUrls {
  script(mac?: string): string;
  kickstart(token: string): string;
  built(token: string): string;
  kernel(token: string): string;
  initrd(token: string): string;
}

export function bootUrls(baseUrl: string): BootUrls {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    script: (mac) => (mac ? `${base}/boot/${macToHyphens(mac)}` : `${base}${IPXE_SCRIPT_PATH}`),
    kickstart: (token) => `${base}/boot/ks/${token}`,
    built: (token) => `${base}/boot/built/${token}`,
    kernel: (token) => `${base}/boot/files/${token}/kernel`,
    initrd: (token) => `${base}/boot/files/${token}/initrd`,
  };
}
