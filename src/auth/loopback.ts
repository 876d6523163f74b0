/**
 * Loopback tests for the open first run (no user yet): the request must come from loopback AND
 * name a loopback host. The second half matters because a browser on this machine can be made to
 * send a page of another origin to 127.0.0.1 (DNS rebinding): its Host header still names that origin.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A socket's remote address on loopback: 127.0.0.0/8, ::1, or 127.x mapped into IPv6. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIPv4(v4)) return v4.split('.')[0] === '127';
  return isIPv6(address) && (address === '::1' || address === '0:0:0:0:0:0:0:1');
}

/** A Host header naming this machine's loopback: localhost, 127.x.y.z or [::1], with an optional port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::[0-9]{1,5})?$/i.exec(host.trim());
  if (!match) return false;
  const name = (match[1] ?? match[2] ?? '').toLowerCase().replace(/\.$/, '');
  if (name === 'localhost') return true;
  if (match[1] !== undefined) return isLoopbackAddress(name);
  return isIPv4(name) && name.split('.')[0] === '127';
}
