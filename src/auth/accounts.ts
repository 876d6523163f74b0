/**
 * Users and API tokens. Passwords are hashed with argon2id; tokens are 32 random bytes shown once
 * ("kvmf_…") and stored as their SHA-256 (they are long and random, so a fast hash is enough and
 * lookups stay indexed). Build tokens of the boot role are a different thing (fleet/builds.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import type { Kysely } from 'kysely';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import type { TokenInfo, User } from './model.ts';
import { RE } from '../fleet/validate-names.ts';
import { effectivePermissions, PERMISSIONS, ROLES, type Permission, type Role } from './policy.ts';

const NAME = RE.userName;
const TOKEN = /^kvmf_[A-Za-z0-9_-]{43}$/;

export interface Principal {
  readonly user: string;
  readonly role: Role;
  readonly permissions: Permission[];
  readonly tokenId: number;
  /** When the token stops working (null: never). */
  readonly expiresAt: string | null;
}

/** Who makes a token: it may not get more than they hold, nor outlive them (tokens only shrink). */
export interface TokenIssuer {
  readonly permissions: readonly Permission[];
  readonly expiresAt: string | null;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export async function countUsers(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('users').select(db.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function createUser(
  db: Kysely<Database>,
  input: { name: string; role: Role; password?: string | undefined },
): Promise<User> {
  if (!NAME.test(input.name ?? ''))
    throw new KvmfleetError(
      ErrorCode.Validation,
      `user name "${input.name}" must be lower-case letters, digits, ".", "_" or "-"`,
    );
  if (!ROLES.includes(input.role))
    throw new KvmfleetError(ErrorCode.Validation, `role must be one of ${ROLES.join(', ')}`);
  if (input.password !== undefined && input.password.length < 12)
    throw new KvmfleetError(ErrorCode.Validation, 'a password has at least 12 characters');
  const exists = await db.selectFrom('users').select('id').where('name', '=', input.name).executeTakeFirst();
  if (exists) throw new KvmfleetError(ErrorCode.AlreadyExists, `user "${input.name}" already exists`);
  const password_hash = input.password ? await argon2.hash(input.password, { type: argon2.argon2id }) : null;
  const row = await db
    .insertInto('users')
    .values({ name: input.name, role: input.role, password_hash })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { name: row.name, role: row.role, createdAt: new Date(row.created_at).toISOString() };
}

export async function listUsers(db: Kysely<Database>): Promise<User[]> {
  return (await db.selectFrom('users').selectAll().orderBy('name').execute()).map((r) => ({
    name: r.name,
    role: r.role,
    createdAt: new Date(r.created_at).toISOString(),
  }));
}

/**
 * Removes a user, never the last admin. The check and the delete are one transaction holding every
 * admin row (FOR UPDATE): two deletes of the only two admins at once would otherwise both count two
 * and both go. The second waits for the first, then no longer sees the row it deleted (READ
 * COMMITTED skips a locked row that was deleted meanwhile), so it counts one.
 */
export async function deleteUser(db: Kysely<Database>, name: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // The admin rows first, always in id order, then the user: every delete locks in one order (no deadlock).
    const admins = await trx
      .selectFrom('users')
      .select('id')
      .where('role', '=', 'admin')
      .orderBy('id')
      .forUpdate()
      .execute();
    const user = await trx
      .selectFrom('users')
      .select(['id', 'role'])
      .where('name', '=', name)
      .forUpdate()
      .executeTakeFirst();
    if (!user) throw new KvmfleetError(ErrorCode.NotFound, `user "${name}" does not exist`);
    if (user.role === 'admin' && admins.length <= 1)
      throw new KvmfleetError(ErrorCode.InUse, 'the last admin cannot be removed');
    await trx.deleteFrom('users').where('id', '=', user.id).execute();
  });
}

/** A new token for the user: returned once, stored as its hash. */
export async function createToken(
  db: Kysely<Database>,
  input: { user: string; name: string; scopes?: string[]; expiresInDays?: number; issuer?: TokenIssuer | undefined },
  token = `kvmf_${randomBytes(32).toString('base64url')}`,
): Promise<{ token: string; info: TokenInfo }> {
  const user = await db.selectFrom('users').select(['id', 'role']).where('name', '=', input.user).executeTakeFirst();
  if (!user) throw new KvmfleetError(ErrorCode.NotFound, `user "${input.user}" does not exist`);
  const scopes = input.scopes ?? [];
  const bad = scopes.filter((s) => !PERMISSIONS.includes(s as Permission));
  if (bad.length)
    throw new KvmfleetError(ErrorCode.Validation, `unknown scope(s) ${bad.join(', ')}: use ${PERMISSIONS.join(', ')}`);
  const beyond = scopes.filter((s) => !effectivePermissions(user.role, []).includes(s as Permission));
  if (beyond.length)
    throw new KvmfleetError(ErrorCode.Forbidden, `a ${user.role}'s token cannot have scope ${beyond.join(', ')}`);
  if (!TOKEN.test(token))
    throw new KvmfleetError(ErrorCode.Validation, 'a token is "kvmf_" and 43 base64url characters');
  let expires = input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null;
  if (input.issuer) expires = withinIssuer(input.issuer, effectivePermissions(user.role, scopes), expires);
  const row = await db
    .insertInto('api_tokens')
    .values({
      user_id: user.id,
      name: input.name,
      token_hash: hashToken(token),
      scopes: JSON.stringify(scopes),
      expires_at: expires,
      last_used_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { token, info: (await listTokens(db, input.user)).find((t) => t.id === row.id)! };
}

/**
 * Tokens only shrink: refuses a token with a permission its issuer lacks (an unscoped token has all
 * of its user's role, so a scoped caller must name scopes) or one that outlives its issuer. With no
 * expiry asked for, a token made by an expiring one expires with it. Returns the expiry to store.
 */
function withinIssuer(issuer: TokenIssuer, wanted: readonly Permission[], expires: Date | null): Date | null {
  const beyond = wanted.filter((p) => !issuer.permissions.includes(p));
  if (beyond.length) {
    throw new KvmfleetError(
      ErrorCode.TokenExceedsCaller,
      `a new token cannot hold more than the token that makes it: it would have ${beyond.join(', ')}; ask for scopes within ${issuer.permissions.join(', ') || 'none'}`,
    );
  }
  if (issuer.expiresAt === null) return expires;
  const limit = new Date(issuer.expiresAt);
  if (expires === null) return limit;
  if (expires.getTime() > limit.getTime())
    throw new KvmfleetError(
      ErrorCode.TokenExceedsCaller,
      `a new token cannot outlive the token that makes it (which expires ${limit.toISOString()})`,
    );
  return expires;
}

export async function listTokens(db: Kysely<Database>, user?: string): Promise<TokenInfo[]> {
  let q = db
    .selectFrom('api_tokens')
    .innerJoin('users', 'users.id', 'api_tokens.user_id')
    .selectAll('api_tokens')
    .select('users.name as user')
    .orderBy('api_tokens.id');
  if (user) q = q.where('users.name', '=', user);
  return (await q.execute()).map((r) => ({
    id: r.id,
    user: r.user,
    name: r.name,
    scopes: r.scopes,
    expiresAt: r.expires_at ? new Date(r.expires_at).toISOString() : null,
    lastUsedAt: r.last_used_at ? new Date(r.last_used_at).toISOString() : null,
    createdAt: new Date(r.created_at).toISOString(),
  }));
}

export async function revokeToken(db: Kysely<Database>, id: number, owner?: string): Promise<void> {
  const token = (await listTokens(db, owner)).find((t) => t.id === id);
  if (!token) throw new KvmfleetError(ErrorCode.NotFound, `token ${id} does not exist${owner ? ` for ${owner}` : ''}`);
  await db.deleteFrom('api_tokens').where('id', '=', id).execute();
}

/** The principal a bearer token stands for, or undefined (unknown, malformed or expired). */
export async function authenticateToken(db: Kysely<Database>, token: string): Promise<Principal | undefined> {
  if (!TOKEN.test(token)) return undefined;
  const row = await db
    .selectFrom('api_tokens')
    .innerJoin('users', 'users.id', 'api_tokens.user_id')
    .select([
      'api_tokens.id',
      'api_tokens.scopes',
      'api_tokens.expires_at',
      'api_tokens.last_used_at',
      'users.name',
      'users.role',
    ])
    .where('api_tokens.token_hash', '=', hashToken(token))
    .executeTakeFirst();
  if (!row || (row.expires_at && new Date(row.expires_at).getTime() < Date.now())) return undefined;
  // last_used_at is for humans: written at most once a minute per token.
  if (!row.last_used_at || Date.now() - new Date(row.last_used_at).getTime() > 60_000) {
    await db.updateTable('api_tokens').set({ last_used_at: new Date() }).where('id', '=', row.id).execute();
  }
  return {
    user: row.name,
    role: row.role,
    permissions: effectivePermissions(row.role, row.scopes),
    tokenId: row.id,
    expiresAt: row.expires_at ? new Date(row.expires_at).toISOString() : null,
  };
}

/**
 * A hash of nothing anyone knows, made once with the same parameters as real ones: an unknown user
 * (or one without a password) is verified against it, so the answer takes as long as for a real
 * user and its timing does not tell which names exist.
 */
let dummyHash: Promise<string> | undefined;
const dummy = () => (dummyHash ??= argon2.hash(randomBytes(32).toString('base64'), { type: argon2.argon2id }));

/** Makes the dummy hash ahead of the first login (so that one is not slower either). */
export function prepareLogin(): void {
  void dummy().catch(() => undefined);
}

/** Password login: a session token valid for `hours`. The same error (and time) for a wrong name or password. */
export async function login(
  db: Kysely<Database>,
  name: string,
  password: string,
  hours = 12,
): Promise<{ token: string; info: TokenInfo }> {
  const user = await db.selectFrom('users').select(['password_hash']).where('name', '=', name).executeTakeFirst();
  const hash = user?.password_hash ?? (await dummy());
  const verified = await argon2.verify(hash, password).catch(() => false);
  const ok = verified && !!user?.password_hash;
  if (!ok) throw new KvmfleetError(ErrorCode.Unauthorized, 'wrong user name or password');
  return createToken(db, { user: name, name: `session ${new Date().toISOString()}`, expiresInDays: hours / 24 });
}
