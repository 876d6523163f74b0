/**
 * Every mutating call to the API — allowed, refused, unknown route or malformed — is in the audit
 * log, keyed by the route Fastify matched (not the URL text). An allowed call's entry is written
 * before its handler runs and completed after, so a client that disconnects is still on record,
 * and a call whose entry cannot be written is refused (503) rather than run unaudited. Calls that
 * end before that point (refused by auth, unparsable bodies) are written when answered.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { AUDIT_PENDING, completeAudit, recordAudit, type AuditEntry } from '../auth/audit.ts';
import { isMutating } from '../auth/policy.ts';
import { ErrorCode } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { STORE_RETRY_AFTER_S } from '../store/unavailable.ts';

declare module 'fastify' {
  interface FastifyRequest {
    auditId?: number;
    auditAborted?: boolean;
  }
}

const LOGIN_ROUTE = '/api/v1/login';

function entryOf(request: FastifyRequest, result: string): Omit<AuditEntry, 'at'> {
  const route = request.is404 ? '(no route)' : (request.routeOptions.url ?? '(no route)');
  const params = (request.params ?? {}) as Record<string, unknown>;
  const loginName = route === LOGIN_ROUTE ? (request.body as { name?: unknown } | undefined)?.name : undefined;
  const actor =
    request.principal?.user ??
    (request.badToken
      ? 'invalid token'
      : typeof loginName === 'string' && loginName
        ? `login:${loginName}`
        : 'anonymous');
  const target = [params.name, params.id, params.hostname].find((v) => typeof v === 'string') as string | undefined;
  return {
    actor,
    action: `${request.method} ${route}`,
    target: target ?? '',
    result,
    detail: { ip: request.ip, path: request.url },
  };
}

/**
 * What the router refuses before any route or hook runs (a URL that does not decode, a parameter
 * beyond the longest name) is still on record when it would have changed something. Auth has not
 * run, so the caller is not known: a sent token is noted as unverified, never looked up or stored.
 */
export async function auditRouterRefusal(db: Kysely<Database>, request: FastifyRequest, status: number): Promise<void> {
  if (!isMutating(request.method)) return;
  const actor = request.headers.authorization ? 'unverified token' : 'anonymous';
  await recordAudit(db, {
    actor,
    action: `${request.method} (refused by the router)`,
    target: '',
    result: String(status),
    detail: { ip: request.ip, path: request.url },
  }).catch((error: Error) => request.log.error({ err: error }, 'audit write failed'));
}

export function registerAuditHooks(app: FastifyInstance, db: Kysely<Database>): void {
  app.addHook('preHandler', async (request, reply) => {
    if (!isMutating(request.method)) return;
    try {
      request.auditId = await recordAudit(db, entryOf(request, AUDIT_PENDING));
    } catch (error) {
      request.log.error({ err: error }, 'audit write failed: call refused');
      return reply
        .code(503)
        .header('retry-after', String(STORE_RETRY_AFTER_S))
        .send({
          error: {
            code: ErrorCode.AuditUnavailable,
            message: 'the audit log cannot be written, so this call is refused; try again',
          },
        });
    }
  });
  app.addHook('onRequestAbort', async (request) => {
    request.auditAborted = true;
    if (request.auditId !== undefined)
      await completeAudit(db, request.auditId, 'client disconnected').catch((error: Error) =>
        request.log.error({ err: error }, 'audit write failed'),
      );
  });
  app.addHook('onResponse', async (request, reply) => {
    if (!isMutating(request.method)) return;
    const result = `${reply.statusCode}${request.auditAborted ? ' (client disconnected)' : ''}`;
    const write =
      request.auditId !== undefined
        ? completeAudit(db, request.auditId, result)
        : recordAudit(db, entryOf(request, result));
    await write.catch((error: Error) => request.log.error({ err: error }, 'audit write failed'));
  });
}
