/**
 * Every route of the API declares what it needs in its route config — `config: { permission }` —
 * and the auth hook (api/auth.ts) decides on the route Fastify matched, never on the URL text, so
 * no spelling of a path (percent-encoding, absolute form, dot segments) can reach a route under a
 * weaker rule. A route that declares nothing is refused at start-up (under /api: at registration).
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { Permission } from '../auth/policy.ts';

/**
 * - public: anyone (probes, the API description, login, the console's files);
 * - read / write / admin: a principal holding that permission (or the open first run);
 * - boot: machines on the boot network (the boot HTTP role only; never served by the API).
 */
export type RoutePermission = Permission | 'public' | 'boot';

export const ROUTE_PERMISSIONS: readonly RoutePermission[] = ['public', 'read', 'write', 'admin', 'boot'];

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: RoutePermission;
  }
}

const declared = (route: RouteOptions) =>
  ROUTE_PERMISSIONS.includes(
    (route.config as { permission?: RoutePermission } | undefined)?.permission as RoutePermission,
  );

/**
 * Makes a missing declaration a start-up error: an /api route throws as it is registered; any
 * other route (e.g. one a plugin adds, whose scope declares it in its own onRoute hook) fails ready().
 */
export function requirePermissionDeclarations(app: FastifyInstance): void {
  const pending: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    if (declared(route)) return;
    if (route.url.startsWith('/api'))
      throw new Error(
        `route ${String(route.method)} ${route.url} declares no permission (config.permission: ${ROUTE_PERMISSIONS.join(' | ')})`,
      );
    pending.push(route);
  });
  app.addHook('onReady', async () => {
    const missing = pending.filter((route) => !declared(route));
    if (missing.length)
      throw new Error(`routes without a permission: ${missing.map((r) => `${String(r.method)} ${r.url}`).join(', ')}`);
  });
}

/** For a plugin scope whose routes are all of one kind (the console's static files): declares them. */
export function declareScopePermission(scope: FastifyInstance, permission: RoutePermission): void {
  scope.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object), permission } as typeof route.config;
  });
}
