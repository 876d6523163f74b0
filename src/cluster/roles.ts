/**
 * The roles one kvmfleet process can run. The embedded default runs all that are available.
 * worker: runs queued jobs (bulk deploys); any number of workers share the queue in the store.
 */
export const ROLES = ['api', 'http', 'tftp', 'dhcp', 'worker'] as const;
export type Role = (typeof ROLES)[number];
/**
 * What `serve` runs when no roles are named. DHCP is left out on purpose: a DHCP server answering on
 * an office LAN by accident does real harm, so it runs only when asked for, with its server address.
 */
export const DEFAULT_ROLES: readonly Role[] = ['api', 'http', 'tftp', 'worker'];

export function parseRoles(text: string): Role[] {
  const names = text
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  const unknown = names.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new Error(`unknown role(s): ${unknown.join(', ')} (available: ${ROLES.join(', ')})`);
  if (names.length === 0) throw new Error('name at least one role');
  return names as Role[];
}

/** "host:port" → parts; IPv6 hosts may be bracketed. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || port > 65535) throw new Error(`${what} wants host:port, not "${text}"`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}
