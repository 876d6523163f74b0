/**
 * Who may do what on the API: roles (admin ⊃ operator ⊃ viewer) grant permissions (read, write,
 * admin); a token may be scoped to fewer. What a request needs is declared by its route
 * (api/permissions.ts); the hook in api/auth.ts applies both.
 */
export type Role = 'admin' | 'operator' | 'viewer';
export type Permission = 'read' | 'write' | 'admin';

export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];
export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'admin'];

const GRANTS: Record<Role, readonly Permission[]> = {
  viewer: ['read'],
  operator: ['read', 'write'],
  admin: ['read', 'write', 'admin'],
};

/** What a token can do: its user's role, narrowed by its scopes (none = all of the role's). */
export function effectivePermissions(role: Role, scopes: readonly string[]): Permission[] {
  const granted = GRANTS[role] ?? [];
  return scopes.length === 0 ? [...granted] : granted.filter((p) => scopes.includes(p));
}

export function isMutating(method: string): boolean {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method);
}
