/**
 * `--trust-proxy LIST`: the load balancers whose X-Forwarded-For the boot HTTP role believes, as
 * addresses or CIDRs (what Fastify's trustProxy takes). Naming them is required: trusting every
 * sender would let any machine on the boot network say which address it has.
 */
import { isIP } from 'node:net';

export function parseTrustedProxies(text: string | undefined): string[] {
  if (text === undefined) return [];
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0)
    throw new Error(
      "--trust-proxy needs the load balancers' addresses or CIDRs, e.g. --trust-proxy 10.1.0.5,10.1.0.6 or 10.1.0.0/28",
    );
  for (const entry of entries) {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
    if (!family || !prefixOk || extra !== undefined)
      throw new Error(
        `--trust-proxy: "${entry}" is not an address or CIDR (name the load balancers, e.g. 10.1.0.5 or 10.1.0.0/28)`,
      );
  }
  return entries;
}
