/**
 * Authentication, authorisation and audit for the API, as Fastify hooks.
 * - Enforced once any user exists, and always when the API listens beyond loopback (serve.ts
 *   refuses to start that way with no user). With no user on loopback the API is open, so the
 *   first admin can be created from the machine itself.
 * - A request carries `Authorization: Bearer kvmf_…`; its user's role, narrowed by the token's
 *   scopes, must grant what the method and path need (auth/policy.ts): else 401 or 403.
 * - Every mutating call — allowed or refused — goes to the audit log when its answer is sent.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { authenticateToken, countUsers, type Principal } from '../auth/accounts.ts';
import { recordAudit } from '../auth/audit.ts';
import { isMutating, isPublic, requiredPermission } from '../auth/policy.ts';
import { ErrorCode } from '../errors.ts';
import type { Database } from '../store/schema.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal | undefined;
    /** A bearer token was sent but matched nothing. */
    badToken?: boolean;
  }
}

export interface AuthOptions {
  /** The API listens beyond loopback: a token is always needed. */
  readonly alwaysRequired: boolean;
}

const deny = (reply: FastifyReply, status: 401 | 403, message: string) =>
  reply.code(status).send({ error: { code: status === 401 ? ErrorCode.Unauthorized : ErrorCode.Forbidden, message } });

export function registerAuth(app: FastifyInstance, db: Kysely<Database>, options: AuthOptions): void {
  // Once a user exists, auth stays on (the last admin cannot be removed).
  let enforced = options.alwaysRequired;
  const isEnforced = async () => (enforced ||= (await countUsers(db)) > 0);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    if (isPublic(request.method, path)) return;
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (token) {
      request.principal = await authenticateToken(db, token);
      if (!request.principal) {
        request.badToken = true;
        return deny(reply, 401, 'unknown or expired token');
      }
    } else if (await isEnforced()) {
      return deny(reply, 401, 'this API needs a token: Authorization: Bearer kvmf_… (kvmfleet --token, KVMFLEET_TOKEN)');
    } else {
      return; // open: no user exists yet and the API is only on loopback
    }
    const need = requiredPermission(request.method, path);
    if (!request.principal.permissions.includes(need)) {
      return deny(reply, 403, `${request.principal.user} (${request.principal.role}${request.principal.permissions.length ? `, token scopes ${request.principal.permissions.join('/')}` : ''}) may not ${need === 'read' ? 'read this' : need === 'write' ? 'change things' : 'administer users, tokens or the audit log'}`);
    }
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    if (!isMutating(request.method) || !path.startsWith('/api/v1/')) return;
    const params = (request.params ?? {}) as Record<string, string>;
    const loginName = path === '/api/v1/login' ? String((request.body as { name?: unknown } | undefined)?.name ?? '') : '';
    await recordAudit(db, {
      actor: request.principal?.user ?? (request.badToken ? 'invalid token' : loginName ? `login:${loginName}` : 'anonymous'),
      action: `${request.method} ${request.routeOptions.url ?? path}`,
      target: params.name ?? params.id ?? params.hostname ?? '',
      result: String(reply.statusCode),
      detail: { ip: request.ip, path },
    }).catch((error: Error) => request.log.error({ err: error }, 'audit write failed'));
  });
}
