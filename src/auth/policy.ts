/**
 * Who may do what on the API: roles (admin ⊃ operator ⊃ viewer) grant permissions (read, write,
 * admin); a token may be scoped to fewer. What a request needs follows from its method and path.
 * Pure functions: the hook in api/auth.ts applies them.
 */
export type Role = 'admin' | 'operator' | 'viewer';
export type Permission = 'read' | 'write' | 'admin';

export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];
export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'admin'];

const GRANTS: Record<Role, readonly Permission[]> = { viewer: ['read'], operator: ['read', 'write'], admin: ['read', 'write', 'admin'] };

/** What a token can do: its user's role, narrowed by its scopes (none = all of the role's). */
export function effectivePermissions(role: Role, scopes: readonly string[]): Permission[] {
  const granted = GRANTS[role] ?? [];
  return scopes.length === 0 ? [...granted] : granted.filter((p) => scopes.includes(p));
}

/** Paths anyone may reach: probes, the API description, logging in, and the console's files (its data needs a token). */
export function isPublic(method: string, path: string): boolean {
  if (path === '/healthz' || path === '/readyz' || path === '/openapi.json' || (method === 'POST' && path === '/api/v1/login')) return true;
  return (method === 'GET' || method === 'HEAD') && (path === '/' || path === '/console' || path.startsWith('/console/'));
}

/** The permission a request needs; users, tokens of others and the audit log are admin matters. */
export function requiredPermission(method: string, path: string): Permission {
  if (/^\/api\/v1\/(users|audit)(\/|$)/.test(path)) return 'admin';
  if (path === '/api/v1/logout') return 'read'; // anyone signed in may end their own session
  // A Kickstart carries the root password hash (and whatever secrets a template holds): not for viewers.
  if (/^\/api\/v1\/hosts\/[^/]+\/kickstart$/.test(path)) return 'write';
  if (/^\/api\/v1\/tokens(\/|$)/.test(path)) return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write';
}

export function isMutating(method: string): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method);
}
