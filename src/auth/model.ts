/**
 * Users and API tokens as the API answers them. Types only, importing nothing with a runtime: the
 * web console type-checks against these too (console/src/types.ts).
 */
import type { Role } from './policy.ts';

export interface User {
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
}

export interface TokenInfo {
  readonly id: number;
  readonly user: string;
  readonly name: string;
  readonly scopes: string[];
  readonly expiresAt: string | null;
  readonly lastUsedAt: string | null;
  readonly createdAt: string;
}
