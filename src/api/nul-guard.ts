/**
 * No NUL (U+0000) in any input: PostgreSQL text and jsonb cannot hold it, so a string that reaches
 * the store with one failed there (500, and its audit row with it). Refused centrally, after parsing
 * and before validation: 400 KVMF_ERR_NUL_CHARACTER for a body (JSON or text), query or path parameter.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorCode } from '../errors.ts';

/** Where in `value` a NUL is (a path like body.profiles[0].name), or undefined. */
export function findNul(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (depth > 64 || value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNul(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    const found = key.includes('\u0000') ? `${path}.<key>` : findNul(item, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

export function registerNulGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request, reply) => {
    const where = findNul(request.params, 'path') ?? findNul(request.query, 'query') ?? findNul(request.body, 'body');
    if (where)
      return reply.code(400).send({
        error: {
          code: ErrorCode.NulCharacter,
          message: `${where} contains a NUL character (U+0000), which no field accepts`,
        },
      });
  });
}
