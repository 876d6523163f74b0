/**
 * Secrets at rest (BMC passwords): AES-256-GCM under a keyring of 32-byte keys.
 *
 * Sealed text is `kvmf1.<key id>.<iv>.<ciphertext>.<tag>` (base64url parts). The key id is the first
 * 4 bytes of SHA-256(key) in hex, so a key needs no name and a ciphertext says which key opens it.
 * The caller's `context` (e.g. `host:17`) is bound as additional authenticated data: a ciphertext
 * copied to another row does not open there.
 *
 * Keys come from KVMFLEET_SECRET_KEY (comma-separated base64 keys) or else the file `secret.key` in
 * the data directory (one base64 key a line, `#` comments), created 0600 with one random key on first
 * use. The first key seals; every key opens. Rotation: put a new key first, restart (the server
 * re-seals every secret under the first key at start, see rekey.ts), then drop the old line.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, KvmfleetError } from '../errors.ts';

const PREFIX = 'kvmf1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const SECRET_KEY_FILE = 'secret.key';

export interface Keyring {
  /** The id of the key that seals. */
  readonly currentId: string;
  seal(plaintext: string, context: string): string;
  /** Throws KVMF_ERR_SECRET_UNAVAILABLE when no key of the ring opens it (the text says which key id it needs, never the secret). */
  open(sealed: string, context: string): string;
  /** The key id a sealed text needs (undefined: not a sealed text). */
  keyIdOf(sealed: string): string | undefined;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, 4).toString('hex');
}

function unavailable(message: string): KvmfleetError {
  return new KvmfleetError(ErrorCode.SecretUnavailable, message);
}

/** Parses base64 keys (a line or comma-separated); each must be exactly 32 bytes. */
export function parseKeys(text: string, origin: string): Buffer[] {
  const keys: Buffer[] = [];
  const items = text
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .flatMap((l) => l.split(','));
  for (const raw of items) {
    const line = raw.trim();
    if (!line) continue;
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(line)) throw unavailable(`${origin}: a key is not base64`);
    const key = Buffer.from(line, 'base64');
    if (key.length !== KEY_BYTES) throw unavailable(`${origin}: a key is ${key.length} bytes, not ${KEY_BYTES}`);
    keys.push(key);
  }
  if (!keys.length) throw unavailable(`${origin}: no key`);
  return keys;
}

export function keyringOf(keys: readonly Buffer[]): Keyring {
  const byId = new Map(keys.map((k) => [keyIdOf(k), k] as const));
  const current = keys[0];
  if (!current) throw unavailable('the keyring has no key');
  const currentId = keyIdOf(current);
  const partsOf = (sealed: string) => {
    const parts = sealed.split('.');
    return parts.length === 5 && parts[0] === PREFIX ? parts : undefined;
  };
  return {
    currentId,
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [
        PREFIX,
        currentId,
        iv.toString('base64url'),
        body.toString('base64url'),
        cipher.getAuthTag().toString('base64url'),
      ].join('.');
    },
    open(sealed, context) {
      const parts = partsOf(sealed);
      if (!parts) throw unavailable('a stored secret is not in the kvmf1 format');
      const [, id, ivText, bodyText, tagText] = parts as [string, string, string, string, string];
      const key = byId.get(id);
      if (!key)
        throw unavailable(
          `a stored secret is sealed with key ${id}, which is not in the keyring (KVMFLEET_SECRET_KEY or ${SECRET_KEY_FILE})`,
        );
      const iv = Buffer.from(ivText, 'base64url');
      const tag = Buffer.from(tagText, 'base64url');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw unavailable('a stored secret is malformed');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(Buffer.from(bodyText, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw unavailable(
          `a stored secret does not open with key ${id} for ${context} (altered, or copied from another record)`,
        );
      }
    },
    keyIdOf: (sealed) => partsOf(sealed)?.[1],
  };
}

/**
 * The keyring from KVMFLEET_SECRET_KEY or from the data directory's key file, created 0600 with a
 * fresh key when absent (O_EXCL: two processes starting at once do not overwrite each other's key).
 * A key file readable by group or others is refused: the key is what protects every BMC password.
 */
export function loadKeyring(dataDir: string, env: NodeJS.ProcessEnv = process.env): Keyring {
  const fromEnv = env.KVMFLEET_SECRET_KEY;
  if (fromEnv) return keyringOf(parseKeys(fromEnv, 'KVMFLEET_SECRET_KEY'));
  if (dataDir === 'memory://')
    throw unavailable('an in-memory store has no key file: set KVMFLEET_SECRET_KEY to store BMC passwords');
  const path = join(dataDir, SECRET_KEY_FILE);
  try {
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(
        fd,
        `# kvmfleet secret keys: the first seals, all open (rotation: README, "BMC credentials")\n${randomBytes(KEY_BYTES).toString('base64')}\n`,
      );
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw unavailable(`cannot create ${path}: ${(error as Error).message}`);
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw unavailable(`${path} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  return keyringOf(parseKeys(readFileSync(path, 'utf8'), path));
}
