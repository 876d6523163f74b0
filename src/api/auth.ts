/**
 * Authentication and authorisation for the API, as a Fastify hook that runs after routing.
 * - Each route declares its permission (api/permissions.ts); the hook reads the matched route's
 *   declaration, never the URL text. A route that declares nothing is refused; a path that matches
 *   no route needs a valid token before it is told 404 (or 405).
 * - Enforced once any user exists, and always when the API listens beyond loopback (serve.ts
 *   refuses to start that way with no user). With no user yet the API is open only to a request
 *   from loopback that also names a loopback Host (auth/loopback.ts), so the first admin can be
 *   created from the machine itself and not by a page of another origin.
 * - A request carries `Authorization: Bearer kvmf_…`; its user's role, narrowed by the token's
 *   scopes, must hold the route's permission: else 401 or 403.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { authenticateToken, countUsers, type Principal } from '../auth/accounts.ts';
import { isLoopbackAddress, isLoopbackHost } from '../auth/loopback.ts';
import { ErrorCode } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import type { RoutePermission } from './permissions.ts';

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

const deny = (
  reply: FastifyReply,
  status: 401 | 403,
  message: string,
  code: string = status === 401 ? ErrorCode.Unauthorized : ErrorCode.Forbidden,
) => reply.code(status).send({ error: { code, message } });

const MAY = { read: 'read this', write: 'change things', admin: 'administer users, tokens or the audit log' } as const;

/** What the matched route needs: its declaration; no route at all: a valid token (then 404/405). */
function needOf(request: FastifyRequest): RoutePermission | 'signed-in' | undefined {
  if (request.is404) return 'signed-in';
  return request.routeOptions.config.permission;
}

export function registerAuth(app: FastifyInstance, db: Kysely<Database>, options: AuthOptions): void {
  // Once a user exists, auth stays on (the last admin cannot be removed).
  let enforced = options.alwaysRequired;
  const isEnforced = async () => (enforced ||= (await countUsers(db)) > 0);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const need = needOf(request);
    if (need === 'public') return;
    // Deny by default: a route without a declaration (start-up refuses those) or one for machines.
    if (need === undefined || need === 'boot') return deny(reply, 403, 'this route is not served to API clients');
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (token) {
      request.principal = await authenticateToken(db, token);
      if (!request.principal) {
        request.badToken = true;
        return deny(reply, 401, 'unknown or expired token');
      }
    } else if (await isEnforced()) {
      return deny(
        reply,
        401,
        'this API needs a token: Authorization: Bearer kvmf_… (kvmfleet --token, KVMFLEET_TOKEN)',
      );
    } else if (
      isLoopbackAddress(request.socket.remoteAddress) &&
      isLoopbackHost(request.headers.host ?? (request.headers[':authority'] as string | undefined))
    ) {
      return; // open: no user exists yet, and this is the machine itself
    } else {
      return deny(
        reply,
        403,
        'no user exists yet: the API is open only to requests from this machine (loopback) that name a loopback host (localhost, 127.0.0.1, [::1])',
        ErrorCode.OpenModeRefused,
      );
    }
    if (need === 'signed-in') return;
    if (!request.principal.permissions.includes(need)) {
      const { user, role, permissions } = request.principal;
      return deny(
        reply,
        403,
        `${user} (${role}${permissions.length ? `, token scopes ${permissions.join('/')}` : ''}) may not ${MAY[need]}`,
      );
    }
  });
}
