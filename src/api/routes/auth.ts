/** Login, users, tokens and the audit log on the API (the hooks in api/auth.ts guard them). */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import {
  createToken,
  createUser,
  deleteUser,
  listTokens,
  listUsers,
  login,
  prepareLogin,
  revokeToken,
} from '../../auth/accounts.ts';
import { listAudit } from '../../auth/audit.ts';
import { effectivePermissions } from '../../auth/policy.ts';
import { LoginThrottle } from '../../auth/login-throttle.ts';
import { ErrorCode, KvmfleetError } from '../../errors.ts';
import type { Database } from '../../store/schema.ts';
import { errorReplies, IdParams, idOf, Name, NameParams } from '../schemas.ts';

const errors = errorReplies(409, 422);
const tags = ['auth'];
const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
const Scope = Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')]);
const NewUser = Type.Object(
  {
    name: Name.user,
    role: Role,
    password: Type.Optional(Type.String({ minLength: 12, maxLength: 1024 })),
    withToken: Type.Optional(
      Type.Boolean({ description: 'also make a first token (shown once): how the first admin gets one' }),
    ),
  },
  { additionalProperties: false },
);
const NewToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    scopes: Type.Optional(Type.Array(Scope, { maxItems: 3 })),
    expiresInDays: Type.Optional(Type.Number({ minimum: 0.001, maximum: 3650 })),
    user: Type.Optional(Name.user),
  },
  { additionalProperties: false },
);

const Instant = Type.String({ format: 'date-time' });
const User = Type.Object({ name: Type.String(), role: Role, createdAt: Instant });
const TokenInfo = Type.Object({
  id: Type.Integer(),
  user: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Scope),
  expiresAt: Type.Union([Instant, Type.Null()]),
  lastUsedAt: Type.Union([Instant, Type.Null()]),
  createdAt: Instant,
});
const SECRET = 'the token itself (kvmf_…): shown this once, stored only as its SHA-256';
const NewTokenReply = Type.Object({ token: Type.String({ description: SECRET }), ...TokenInfo.properties });
const NewUserReply = Type.Object({ ...User.properties, token: Type.Optional(Type.String({ description: SECRET })) });
const LoginReply = Type.Object({
  token: Type.String({ description: 'a session token (12 h)' }),
  user: Type.String(),
  expiresAt: Type.Union([Instant, Type.Null()]),
});
const Whoami = Type.Object({
  user: Type.Union([Type.String(), Type.Null()]),
  role: Type.Union([Role, Type.Null()]),
  permissions: Type.Array(Scope),
  open: Type.Optional(Type.Boolean({ description: 'no user exists yet: the API is open to this machine' })),
});
const AuditEntry = Type.Object({
  at: Instant,
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  result: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown()),
});
const Deleted = { type: 'null', description: 'done' } as const;

const LOGIN_BODY_LIMIT = 16 * 1024;

const isAdmin = (request: FastifyRequest) => !request.principal || request.principal.permissions.includes('admin');

export function registerAuthRoutes(app: FastifyInstance, db: Kysely<Database>, throttle = new LoginThrottle()): void {
  prepareLogin();
  // Public: a small body (a name and a password) is all it takes.
  app.post(
    '/api/v1/login',
    {
      config: { permission: 'public' },
      bodyLimit: LOGIN_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Password login: a session token (12 h); repeated failures are refused for a while (429, Retry-After)',
        body: Type.Object(
          { name: Type.String({ maxLength: 63 }), password: Type.String({ maxLength: 1024 }) },
          { additionalProperties: false },
        ),
        response: {
          200: LoginReply,
          401: { $ref: 'Error#' },
          429: {
            $ref: 'Error#',
            description: 'too many failed logins: see Retry-After',
            headers: {
              'retry-after': { type: 'integer', minimum: 1, description: 'seconds until the next attempt is taken' },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { name, password } = request.body as { name: string; password: string };
      const attempt = throttle.reserve(name, request.ip);
      if (!attempt.allowed) {
        reply.header('retry-after', String(attempt.retryAfterS));
        throw new KvmfleetError(
          ErrorCode.TooManyAttempts,
          `too many failed logins: try again in ${attempt.retryAfterS} s`,
        );
      }
      let succeeded = false;
      try {
        const { token, info } = await login(db, name, password);
        succeeded = true;
        return { token, user: name, expiresAt: info.expiresAt };
      } finally {
        attempt.settle(succeeded);
      }
    },
  );
  app.post(
    '/api/v1/logout',
    {
      config: { permission: 'read' },
      schema: { tags, summary: 'End this session: the token of the call is revoked', response: { 204: Deleted } },
    },
    async (request, reply) => {
      if (request.principal) await revokeToken(db, request.principal.tokenId);
      return reply.code(204).send();
    },
  );
  app.get(
    '/api/v1/whoami',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: 'The caller: user, role, permissions (anonymous while the API is open)',
        response: { 200: Whoami },
      },
    },
    async (request) =>
      request.principal
        ? { user: request.principal.user, role: request.principal.role, permissions: request.principal.permissions }
        : { user: null, role: null, permissions: ['read', 'write', 'admin'], open: true },
  );

  app.get(
    '/api/v1/users',
    {
      config: { permission: 'admin' },
      schema: { tags, summary: 'Users and their roles', response: { 200: Type.Array(User) } },
    },
    () => listUsers(db),
  );
  app.post(
    '/api/v1/users',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'A new user (no role beyond the calling token’s: 403); withToken: its first token, shown once',
        body: NewUser,
        response: { 201: NewUserReply, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof NewUser>;
      // A user with more than the caller's token holds would be a way around "tokens only shrink".
      const beyond = request.principal
        ? effectivePermissions(body.role, []).filter((p) => !request.principal!.permissions.includes(p))
        : [];
      if (beyond.length)
        throw new KvmfleetError(
          ErrorCode.TokenExceedsCaller,
          `this token cannot make a ${body.role}: that would hold ${beyond.join(', ')}`,
        );
      const user = await createUser(db, body);
      const token = body.withToken
        ? (await createToken(db, { user: user.name, name: 'first', issuer: request.principal })).token
        : undefined;
      reply.code(201);
      return { ...user, ...(token ? { token } : {}) };
    },
  );
  app.delete(
    '/api/v1/users/:name',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Remove a user and its tokens (not the last admin: 409)',
        params: NameParams,
        response: { 204: Deleted, ...errors },
      },
    },
    async (request, reply) => {
      await deleteUser(db, (request.params as { name: string }).name);
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: 'Your tokens (an admin sees everyone’s); never the tokens themselves',
        response: { 200: Type.Array(TokenInfo) },
      },
    },
    (request) => listTokens(db, isAdmin(request) ? undefined : request.principal!.user),
  );
  app.post(
    '/api/v1/tokens',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary:
          'A new token, shown once; scopes narrow what your role allows. Tokens only shrink: no scope the calling token lacks, no expiry after its own (none asked: it expires with the caller); else 403 KVMF_ERR_TOKEN_EXCEEDS_CALLER; 404 for a user that does not exist',
        body: NewToken,
        response: { 201: NewTokenReply, ...errors, ...errorReplies(404) },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof NewToken>;
      const user = body.user ?? request.principal?.user;
      if (!user) throw new KvmfleetError(ErrorCode.Validation, 'name the user the token is for');
      if (request.principal && user !== request.principal.user && !isAdmin(request))
        throw new KvmfleetError(ErrorCode.Forbidden, 'only an admin makes tokens for others');
      const { token, info } = await createToken(db, {
        user,
        name: body.name,
        issuer: request.principal,
        ...(body.scopes ? { scopes: body.scopes } : {}),
        ...(body.expiresInDays ? { expiresInDays: body.expiresInDays } : {}),
      });
      reply.code(201);
      return { token, ...info };
    },
  );
  app.delete(
    '/api/v1/tokens/:id',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Revoke a token (yours; an admin: anyone’s)',
        params: IdParams,
        response: { 204: Deleted },
      },
    },
    async (request, reply) => {
      await revokeToken(
        db,
        idOf((request.params as { id: string }).id, 'token'),
        isAdmin(request) ? undefined : request.principal!.user,
      );
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/audit',
    {
      config: { permission: 'admin' },
      schema: {
        tags,
        summary: 'Mutating API calls: who, what, when, result',
        querystring: Type.Object({
          actor: Type.Optional(Type.String({ maxLength: 128 })),
          limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,4}$' })),
        }),
        response: { 200: Type.Array(AuditEntry) },
      },
    },
    (request) => {
      const q = request.query as { actor?: string; limit?: string };
      return listAudit(db, { ...(q.actor ? { actor: q.actor } : {}), ...(q.limit ? { limit: Number(q.limit) } : {}) });
    },
  );
}
