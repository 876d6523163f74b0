/** JSON schemas of the API's bodies and replies (TypeBox: one definition gives the schema and the type). */
import { Type, type Static } from '@sinclair/typebox';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { OS_FAMILIES } from '../fleet/model.ts';
import { BUILD_STATES } from '../store/schema.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

export const ErrorReply = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable error code, e.g. KVMF_ERR_DUPLICATE_MAC' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorReply' },
);

/** Response schemas for the error statuses a route can answer, all in the one ErrorReply shape. */
export function errorReplies(...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(statuses.map((status) => [status, { $ref: 'ErrorReply#' }]));
}

export const Site = Type.Object({ name: Type.String(), description: Type.String(), buildCap: Type.Integer() }, { $id: 'Site' });
export const SiteInput = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 63 }), description: Type.Optional(Type.String({ maxLength: 1000 })), buildCap: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000 })) },
  { additionalProperties: false },
);
export const SitePatch = Type.Partial(Type.Omit(SiteInput, ['name']), { additionalProperties: false });

const Ip = Type.String({ maxLength: 15 });
const DynamicRange = Type.Object({ start: Ip, end: Ip }, { additionalProperties: false });
export const Network = Type.Object(
  {
    name: Type.String(),
    site: Type.String(),
    cidr: Type.String(),
    gateway: Nullable(Type.String()),
    dns: Type.Array(Type.String()),
    domain: Type.String(),
    dynamicRange: Type.Union([DynamicRange, Type.Null()]),
    relays: Type.Array(Type.String()),
    vlan: Type.Union([Type.Integer(), Type.Null()]),
    leaseSeconds: Type.Integer(),
  },
  { $id: 'Network' },
);
export const NetworkInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63 }),
    site: Type.String({ minLength: 1 }),
    cidr: Type.String({ maxLength: 18 }),
    gateway: Type.Optional(Nullable(Ip)),
    dns: Type.Optional(Type.Array(Ip, { maxItems: 8 })),
    domain: Type.Optional(Type.String({ maxLength: 253 })),
    dynamicRange: Type.Optional(Type.Union([DynamicRange, Type.Null()])),
    relays: Type.Optional(Type.Array(Ip, { maxItems: 64 })),
    vlan: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 4094 }), Type.Null()])),
    leaseSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })),
  },
  { additionalProperties: false },
);
export const NetworkPatch = Type.Partial(Type.Omit(NetworkInput, ['name']), { additionalProperties: false });

export const Profile = Type.Object(
  {
    name: Type.String(),
    os: Type.String(),
    arch: Type.String(),
    installTreeUrl: Type.String(),
    kernelPath: Type.String(),
    initrdPath: Type.String(),
    kickstartTemplate: Type.String(),
    packages: Type.Array(Type.String()),
    kernelArgs: Type.String(),
    hasRootPassword: Type.Boolean(),
  },
  { $id: 'Profile' },
);
export const ProfileInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63 }),
    os: Type.Union(OS_FAMILIES.map((os) => Type.Literal(os))),
    arch: Type.Optional(Type.String({ maxLength: 16 })),
    installTreeUrl: Type.String({ maxLength: 2048 }),
    kernelPath: Type.Optional(Type.String({ maxLength: 1024 })),
    initrdPath: Type.Optional(Type.String({ maxLength: 1024 })),
    kickstartTemplate: Type.Optional(Type.String({ maxLength: 128 })),
    packages: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 1000 })),
    kernelArgs: Type.Optional(Type.String({ maxLength: 4096 })),
    rootPasswordHash: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);

const Bmc = Type.Object({ type: Type.String({ maxLength: 32 }), address: Type.String({ maxLength: 253 }), username: Type.Optional(Type.String({ maxLength: 128 })), credentials: Type.Optional(Type.String({ maxLength: 63, description: 'a shared BMC credentials set (its password is never answered)' })) }, { additionalProperties: false });
export const Host = Type.Object(
  {
    hostname: Type.String(),
    macs: Type.Array(Type.String()),
    ip: Nullable(Type.String()),
    network: Nullable(Type.String()),
    site: Nullable(Type.String()),
    profile: Nullable(Type.String()),
    smbiosUuid: Nullable(Type.String()),
    bmc: Type.Union([Bmc, Type.Null()]),
    buildState: Type.Union(BUILD_STATES.map((s) => Type.Literal(s))),
    stateChangedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Host' },
);
export const HostInput = Type.Object(
  {
    hostname: Type.String({ minLength: 1, maxLength: 253 }),
    macs: Type.Array(Type.String({ maxLength: 32 }), { minItems: 1, maxItems: 16 }),
    ip: Type.Optional(Nullable(Ip)),
    network: Type.String({ minLength: 1 }),
    profile: Type.String({ minLength: 1 }),
    smbiosUuid: Type.Optional(Nullable(Type.String({ maxLength: 36 }))),
    bmc: Type.Optional(Type.Union([Bmc, Type.Null()])),
  },
  { additionalProperties: false },
);
export const HostQuery = Type.Object({
  site: Type.Optional(Type.String()),
  network: Type.Optional(Type.String()),
  state: Type.Optional(Type.Union(BUILD_STATES.map((s) => Type.Literal(s)))),
  q: Type.Optional(Type.String({ maxLength: 253, description: 'part of a hostname, an address or a MAC' })),
  limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,4}$', description: 'a page of at most this many hosts (the total is in X-Total-Count)' })),
  offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })),
});

export const NameParams = Type.Object({ name: Type.String({ maxLength: 253 }) });

/** Ids are 32-bit serial columns: a larger number names nothing (404), it must not reach the store. */
export const MAX_ID = 2_147_483_647;
export const IdParams = Type.Object({ id: Type.String({ pattern: '^[1-9][0-9]{0,9}$', description: `1 to ${MAX_ID}` }) });
export function idOf(text: string, what: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_ID) throw new KvmfleetError(ErrorCode.NotFound, `${what} ${text} does not exist`);
  return id;
}

const Counts = Type.Object({ created: Type.Integer(), updated: Type.Integer() });
export const ImportQuery = Type.Object({
  dryRun: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'true: check only, write nothing' })),
  mode: Type.Optional(Type.Union([Type.Literal('create'), Type.Literal('upsert')], { default: 'create', description: 'hosts: create fails on an existing hostname; upsert updates it' })),
});
export const SiteImportReply = Type.Object({ dryRun: Type.Boolean(), sites: Counts, networks: Counts, profiles: Counts });
export const HostsImportReply = Type.Object({ dryRun: Type.Boolean(), rows: Type.Integer(), created: Type.Integer(), updated: Type.Integer() });

export type SiteInputT = Static<typeof SiteInput>;
export type NetworkInputT = Static<typeof NetworkInput>;
export type HostInputT = Static<typeof HostInput>;
