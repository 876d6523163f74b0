/**
 * The kinds the boot roles' summaries count by (boot-summary.ts), from what each role already
 * knows: the route that matched, the DHCP message type, the file a TFTP client asked for. Small
 * fixed tables, so a hostile client cannot invent new kinds; anything else is "other".
 */

/** Boot HTTP: by Fastify's matched route (`request.routeOptions.url`; undefined when nothing matched). */
const HTTP_ROUTES: Readonly<Record<string, string>> = {
  '/boot/:mac': 'script',
  '/boot/uuid/:uuid': 'script',
  '/boot/ks/:token': 'kickstart',
  '/boot/built/:token': 'callback',
  '/trees/*': 'tree',
  '/mirror/:name/*': 'mirror',
  '/healthz': 'health',
  '/readyz': 'health',
};

export function bootHttpKind(
  route: string | undefined,
  params?: Readonly<Record<string, unknown>> | undefined,
): string {
  if (route === undefined) return 'unmatched';
  if (route === '/boot/files/:token/:which')
    return params?.which === 'kernel' || params?.which === 'initrd' ? params.which : 'other';
  // Firmware for UEFI HTTP boot (boot/firmware-http.ts): one route per iPXE binary at the top.
  if (/^\/[\w.-]+\.(efi|kpxe|pxe|lkrn)$/.test(route)) return 'firmware';
  return HTTP_ROUTES[route] ?? 'other';
}

/** DHCP message types (RFC 2132 §9.6) by number, as the summary names them. */
const DHCP_TYPES = ['unknown', 'discover', 'offer', 'request', 'decline', 'ack', 'nak', 'release', 'inform'];

export function dhcpTypeName(type: number | undefined): string {
  return type !== undefined && Number.isInteger(type) && type > 0 && type < DHCP_TYPES.length
    ? DHCP_TYPES[type]!
    : 'unknown';
}

/** DHCP replies that go without saying in a summary; the rest (nak, no reply) are named. */
export const dhcpReplyIsOk = (status: number | string) => status === 'offer' || status === 'ack';

/** TFTP: the file's base name if it is one of the boot files served, else "other" (names are chosen by clients). */
export function tftpKind(filename: string, served: Iterable<string>): string {
  const base = filename.replace(/^.*\//, '');
  for (const name of served) if (name === base) return base;
  return 'other';
}
