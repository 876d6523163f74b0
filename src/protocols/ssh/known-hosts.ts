/**
 * OpenSSH known_hosts checking for kvmfleet's SSH connections to hypervisors: plain and hashed
 * (|1|salt|hash) host entries, non-standard ports as [host]:port, negated (!) and wildcard patterns
 * are not matched (they never authorise a key here). @revoked and @cert-authority lines are honoured
 * only in that a revoked key is refused.
 */
import { createHmac } from 'node:crypto';

export type HostKeyVerdict = { ok: true } | { ok: false; reason: 'unknown' | 'changed' | 'revoked' };

function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostMatches(field: string, pattern: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(pattern).digest('base64') === hash;
  }
  return field.split(',').some((name) => name.toLowerCase() === pattern.toLowerCase());
}

/** Checks `key` (the SSH wire encoding of the server's host key) for host:port against known_hosts text. */
export function verifyHostKey(knownHosts: string, host: string, port: number, key: Buffer): HostKeyVerdict {
  const pattern = hostPattern(host, port);
  let hostSeen = false;
  for (const raw of knownHosts.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]!.startsWith('@') ? fields.shift() : undefined;
    const [hosts, , keyText] = fields;
    if (!hosts || !keyText) continue;
    let listed: Buffer;
    try {
      listed = Buffer.from(keyText, 'base64');
    } catch {
      continue;
    }
    const sameKey = listed.equals(key);
    if (marker === '@revoked') {
      if (sameKey) return { ok: false, reason: 'revoked' };
      continue;
    }
    if (marker !== undefined || !hostMatches(hosts, pattern)) continue;
    if (sameKey) return { ok: true };
    hostSeen = true;
  }
  return { ok: false, reason: hostSeen ? 'changed' : 'unknown' };
}
