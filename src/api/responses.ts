/**
 * The error answers every operation can give, added to its response schemas as it is registered,
 * so the OpenAPI document lists them without each route repeating them (and none is forgotten):
 * - 400 for every operation: a malformed query, body or parameter, or a NUL character (api/nul-guard.ts);
 * - 401 and 403 for every non-public one (api/auth.ts);
 * - 503 for every one: the store does not answer (or, for a mutating one, its audit entry could not be
 *   written: api/audit-hooks.ts), with Retry-After;
 * - 413 and 415 for one with a body (body limit, a media type it does not take);
 * - 404 and 414 for one with path parameters (names nothing; longer than the router takes).
 * A route declares its own 2xx and its domain errors (409, 422, 429, 502…) itself.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { RoutePermission } from './permissions.ts';
import { errorReplies } from './schemas.ts';

/** The error statuses the framework and the shared hooks give this route. */
export function commonErrors(
  route: Pick<RouteOptions, 'method' | 'url'> & { permission?: RoutePermission | undefined; hasBody: boolean },
): number[] {
  const statuses = [400];
  if (route.permission !== 'public') statuses.push(401, 403);
  statuses.push(503);
  if (route.hasBody) statuses.push(413, 415);
  if (route.url.includes(':')) statuses.push(404, 414);
  return statuses;
}

export function documentCommonErrors(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = (route.schema ?? {}) as Record<string, unknown> & {
      hide?: boolean;
      response?: Record<string, unknown>;
      body?: unknown;
    };
    if (schema.hide) return;
    const permission = (route.config as { permission?: RoutePermission } | undefined)?.permission;
    const statuses = commonErrors({
      method: route.method,
      url: route.url,
      permission,
      hasBody: schema.body !== undefined,
    });
    const response = { ...errorReplies(...statuses), ...(schema.response ?? {}) };
    route.schema = { ...schema, response };
  });
}
