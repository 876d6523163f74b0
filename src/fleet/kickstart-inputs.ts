/**
 * Values of a profile that end up in a Kickstart or an iPXE script, checked where they enter (API
 * and imports): a newline there would let a profile add its own %pre/%post sections, which run as
 * root on every host it builds. Each refusal has its own stable code (422).
 */
import { ErrorCode, KvmfleetError } from '../errors.ts';

const CONTROL_CLASS = '\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029';
const CONTROL = new RegExp(`[${CONTROL_CLASS}]`);
/** JSON-schema pattern of a text field that reaches a Kickstart or an iPXE script (api/schemas.ts). */
export const NO_CONTROL_PATTERN = `^[^${CONTROL_CLASS}]*$`;

export const hasControlCharacter = (value: string): boolean => CONTROL.test(value);

/** A text field must hold no control character (newline, NUL, escape …) nor line separator. */
export function checkNoControl(field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string') throw new KvmfleetError(ErrorCode.Validation, `${field} must be text`);
  if (hasControlCharacter(value))
    throw new KvmfleetError(
      ErrorCode.ControlCharacter,
      `${field} must not contain control characters (newline, tab, NUL …)`,
    );
}

/**
 * A %packages entry: a package name or glob, @group or @^environment (by id), optionally excluded
 * with a leading "-". No spaces, no "%", no control characters.
 */
export const PACKAGE_PATTERN = '^-?(@\\^?)?[A-Za-z0-9_][A-Za-z0-9._+:*?~-]{0,199}$';
const PACKAGE = new RegExp(PACKAGE_PATTERN);

export function checkPackageNames(packages: unknown): void {
  if (packages === undefined) return;
  if (!Array.isArray(packages))
    throw new KvmfleetError(ErrorCode.BadPackageName, 'packages must be a list of package names');
  for (const name of packages) {
    if (typeof name !== 'string' || !PACKAGE.test(name)) {
      throw new KvmfleetError(
        ErrorCode.BadPackageName,
        `"${typeof name === 'string' ? name.replace(CONTROL, '\\?') : String(name)}" is not a package, @group or @^environment name (letters, digits and . _ + : * ? ~ -; a leading - excludes)`,
      );
    }
  }
}

// crypt(3) hashes, by scheme: $1$/$5$/$6$ (MD5, SHA-256, SHA-512: optional rounds=, salt, hash),
// $2a$/$2b$/$2y$ (bcrypt: cost, 53 characters), $y$ (yescrypt: parameters, salt, hash). Every part
// is in crypt's alphabet [./0-9A-Za-z], so nothing else can ride along.
const B64 = '[./0-9A-Za-z]';
const CRYPT_SOURCES = [
  `^\\$(1|5|6)\\$(rounds=[0-9]{1,9}\\$)?${B64}{1,16}\\$${B64}{1,86}$`,
  `^\\$2[aby]\\$[0-9]{2}\\$${B64}{53}$`,
  `^\\$y\\$${B64}{1,64}\\$${B64}{1,86}\\$${B64}{1,86}$`,
];
const CRYPT = CRYPT_SOURCES.map((source) => new RegExp(source));
/** JSON-schema pattern of rootPasswordHash: one of the crypt(3) shapes, or empty (no root password). */
export const PASSWORD_HASH_PATTERN = ['^$', ...CRYPT_SOURCES].join('|');

export function checkPasswordHash(hash: unknown): void {
  if (hash === undefined || hash === null || hash === '') return;
  if (typeof hash !== 'string' || !CRYPT.some((re) => re.test(hash))) {
    throw new KvmfleetError(
      ErrorCode.BadPasswordHash,
      'rootPasswordHash must be a crypt(3) hash — $6$salt$hash (openssl passwd -6), $y$… (mkpasswd -m yescrypt), $5$, $1$ or bcrypt — never a clear-text password',
    );
  }
}
