/**
 * Kernel and initrd fetches behind the nginx of `kvmfleet nginx-config` (cluster/nginx.ts): the
 * boot role still checks the token and records the fetch on the host's timeline, then tells nginx
 * which tree file to send (`X-Accel-Redirect: /_accel/trees/…`, an internal location) instead of
 * redirecting the machine. nginx marks what it proxies with X-Kvmfleet-Accel; the mark is believed
 * only on connections from a --trust-proxy address, so anyone else still gets the 302 (and an
 * X-Accel-Redirect reaching a client without nginx in between would be useless to it anyway).
 */
import type { FastifyRequest } from 'fastify';

/** Set by the generated nginx on every request it proxies (it replaces any the client sent). */
export const ACCEL_REQUEST_HEADER = 'x-kvmfleet-accel';
/** nginx's internal location: /_accel/trees/P is the tree file /trees/P. */
export const ACCEL_TREES_PREFIX = '/_accel/trees/';
const TREES_PREFIX = '/trees/';

/**
 * The X-Accel-Redirect target for a boot file's URL, or undefined to redirect as without nginx:
 * the request must come through a trusted proxy that says it can, and the URL must name a file
 * under /trees/ of the address the machine asked (not a mirror elsewhere).
 */
export function accelTarget(request: FastifyRequest, url: string): string | undefined {
  // With trustProxy, request.ips is the socket's address followed by the X-Forwarded-For hops up
  // to the first untrusted one: more than one entry means the connection is from a trusted proxy.
  const trusted = (request.ips?.length ?? 0) > 1;
  if (!trusted || request.headers[ACCEL_REQUEST_HEADER] !== '1') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  // The WHATWG parser has already resolved any ../ (a path that climbs out of /trees/ fails the
  // prefix test); percent escapes are left to the plain redirect rather than to nginx's decoding.
  const path = parsed.pathname;
  if (parsed.host !== request.host || parsed.search || !path.startsWith(TREES_PREFIX) || path.includes('%'))
    return undefined;
  return ACCEL_TREES_PREFIX + path.slice(TREES_PREFIX.length);
}
