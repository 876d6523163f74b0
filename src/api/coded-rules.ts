/**
 * Schema rules whose refusal has its own stable code: a property schema carries `x-error-code`
 * (api/schemas.ts) beside the pattern the server enforces, and a request failing that pattern is
 * answered 422 with the code (as the validators would have), not 400 as a malformed request.
 */
import { ErrorCode } from '../errors.ts';
import { ERROR_CODE_KEYWORD } from './schemas.ts';

const CONTEXT_KEY: Record<string, string> = {
  body: 'body',
  querystring: 'querystring',
  params: 'params',
  headers: 'headers',
};

/** The code declared on the schema node whose keyword failed (Ajv's schemaPath "#/properties/a/items/pattern"). */
export function codedRuleOf(
  routeSchema: unknown,
  context: string | undefined,
  schemaPath: string | undefined,
): ErrorCode | undefined {
  if (!context || !schemaPath?.startsWith('#/') || !CONTEXT_KEY[context]) return undefined;
  let node = (routeSchema as Record<string, unknown> | undefined)?.[CONTEXT_KEY[context]!];
  const steps = schemaPath
    .slice(2)
    .split('/')
    .map((step) => step.replace(/~1/g, '/').replace(/~0/g, '~'));
  for (const step of steps.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[step];
  }
  const code = (node as Record<string, unknown> | undefined)?.[ERROR_CODE_KEYWORD];
  return typeof code === 'string' && (Object.values(ErrorCode) as string[]).includes(code)
    ? (code as ErrorCode)
    : undefined;
}

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.ControlCharacter]: 'must not contain control characters (newline, tab, NUL …)',
  [ErrorCode.BadPackageName]:
    'is not a package, @group or @^environment name (letters, digits and . _ + : * ? ~ -; a leading - excludes)',
  [ErrorCode.BadPasswordHash]:
    'must be a crypt(3) hash — $6$salt$hash (openssl passwd -6), $y$… (mkpasswd -m yescrypt), $5$, $1$ or bcrypt — never a clear-text password',
};

export const messageOf = (code: ErrorCode): string => MESSAGES[code] ?? 'is not accepted';
