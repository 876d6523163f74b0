/** The roles one kvmfleet process can run. The embedded default runs all that are available. */
export const ROLES = ['api'] as const;
export type Role = (typeof ROLES)[number];

export function parseRoles(text: string): Role[] {
  const names = text.split(',').map((r) => r.trim()).filter((r) => r !== '');
  const unknown = names.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new Error(`unknown role(s): ${unknown.join(', ')} (available: ${ROLES.join(', ')})`);
  if (names.length === 0) throw new Error('name at least one role');
  return names as Role[];
}
