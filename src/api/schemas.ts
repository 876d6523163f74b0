/**
 * JSON schemas of the API's bodies and replies (TypeBox: one definition gives the schema and the type).
 * Input patterns come from the validators (fleet/validate-names.ts, fleet/kickstart-inputs.ts), so
 * the document states the rules the server enforces; reply schemas are what Fastify's serializer
 * writes, so an answer never carries a field they do not name.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { OS_FAMILIES } from '../fleet/model.ts';
import { HOSTNAME_MAX, PATTERN } from '../fleet/validate-names.ts';
import { NO_CONTROL_PATTERN, PACKAGE_PATTERN, PASSWORD_HASH_PATTERN } from '../fleet/kickstart-inputs.ts';
import { BUILD_STATES } from '../store/schema.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/**
 * A pattern whose refusal the server reports with its own stable code (422), not as a malformed
 * request (400): the error handler reads `x-error-code` beside the failing keyword (app.ts).
 */
export const ERROR_CODE_KEYWORD = 'x-error-code';
const coded = (code: ErrorCode) => ({ [ERROR_CODE_KEYWORD]: code });

/** Text that reaches a Kickstart or an iPXE script: no control character (422 KVMF_ERR_CONTROL_CHARACTER). */
const NoControl = { pattern: NO_CONTROL_PATTERN, ...coded(ErrorCode.ControlCharacter) };
const ScriptText = (options: { maxLength: number; minLength?: number; description?: string }) =>
  Type.String({ ...options, pattern: NO_CONTROL_PATTERN, ...coded(ErrorCode.ControlCharacter) });

export const Name = {
  site: Type.String({ minLength: 1, maxLength: 63, pattern: PATTERN.siteName }),
  network: Type.String({ minLength: 1, maxLength: 63, pattern: PATTERN.networkName }),
  profile: Type.String({ minLength: 1, maxLength: 63, pattern: PATTERN.profileName }),
  user: Type.String({ minLength: 1, maxLength: 63, pattern: PATTERN.userName }),
  hostname: Type.String({ minLength: 1, maxLength: HOSTNAME_MAX, pattern: PATTERN.hostname }),
  vm: Type.String({ minLength: 1, maxLength: 64, pattern: PATTERN.vmName }),
  hypervisor: Type.String({ minLength: 1, maxLength: 253, pattern: PATTERN.hypervisorName }),
};
export const Ipv4 = Type.String({ maxLength: 15, pattern: PATTERN.ipv4 });

/** Every error answer: one shape, matched by its stable code. */
export const ErrorReply = Type.Object(
  {
    error: Type.Object({
      code: Type.Union(
        Object.values(ErrorCode).map((code) => Type.Literal(code)),
        { description: 'Stable error code, e.g. KVMF_ERR_DUPLICATE_MAC: match on it, never on the message' },
      ),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'Error' },
);

/** Response schemas for the error statuses a route can answer, all in the one Error shape. */
export function errorReplies(
  ...statuses: number[]
): Record<number, { $ref: string; description?: string; headers?: Record<string, unknown> }> {
  return Object.fromEntries(statuses.map((status) => [status, status === 503 ? UNAVAILABLE : { $ref: 'Error#' }]));
}

/** 503: the store (or the audit log, or a secret) cannot be reached now; Retry-After says when to try again. */
const UNAVAILABLE = {
  $ref: 'Error#',
  description: 'the store, the audit log or a needed secret is unavailable; try again after Retry-After',
  headers: { 'retry-after': { type: 'integer', minimum: 1, description: 'seconds to wait before trying again' } },
};

/** A text answer (scripts, configurations, metrics): its media type and a string. */
export function textReply(
  mediaType: string,
  description: string,
): { description: string; content: Record<string, { schema: TSchema }> } {
  return { description, content: { [mediaType]: { schema: Type.String() } } };
}

/** A server-sent event stream (text/event-stream): `event: TYPE` and JSON `data:` lines. */
export function eventStreamReply(description: string): {
  description: string;
  content: Record<string, { schema: TSchema }>;
} {
  return {
    description,
    content: {
      'text/event-stream': {
        schema: Type.String({
          description: 'event: TYPE\\ndata: JSON\\n\\n per event; comments (": …") keep the connection alive',
        }),
      },
    },
  };
}

export const Site = Type.Object(
  { name: Type.String(), description: Type.String(), buildCap: Type.Integer() },
  { $id: 'Site' },
);
export const SiteInput = Type.Object(
  {
    name: Name.site,
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    buildCap: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000 })),
  },
  { additionalProperties: false },
);
export const SitePatch = Type.Partial(Type.Omit(SiteInput, ['name']), { additionalProperties: false });

const Ip = Ipv4;
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
    name: Name.network,
    site: Name.site,
    cidr: Type.String({
      maxLength: 18,
      pattern: PATTERN.cidr,
      description: 'the network address (no host bits set) and a prefix of /0–/30',
    }),
    gateway: Type.Optional(Nullable(Ip)),
    dns: Type.Optional(Type.Array(Ip, { maxItems: 8 })),
    domain: Type.Optional(Type.Union([Type.Literal(''), Type.String({ maxLength: 253, pattern: PATTERN.domain })])),
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
    name: Name.profile,
    os: Type.Union(OS_FAMILIES.map((os) => Type.Literal(os))),
    arch: Type.Optional(ScriptText({ maxLength: 16 })),
    installTreeUrl: Type.String({
      maxLength: 2048,
      minLength: 1,
      description: 'http(s) URL of the install tree',
      allOf: [NoControl, { pattern: PATTERN.httpUrl }],
    }),
    kernelPath: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: 'relative to the install tree (no leading /, no ..)',
        allOf: [NoControl, { pattern: PATTERN.relativePath }],
      }),
    ),
    initrdPath: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: 'relative to the install tree (no leading /, no ..)',
        allOf: [NoControl, { pattern: PATTERN.relativePath }],
      }),
    ),
    kickstartTemplate: Type.Optional(ScriptText({ maxLength: 128, description: 'a template of templates/' })),
    packages: Type.Optional(
      Type.Array(Type.String({ maxLength: 201, pattern: PACKAGE_PATTERN, ...coded(ErrorCode.BadPackageName) }), {
        maxItems: 1000,
      }),
    ),
    kernelArgs: Type.Optional(ScriptText({ maxLength: 4096 })),
    rootPasswordHash: Type.Optional(
      Type.String({
        maxLength: 512,
        pattern: PASSWORD_HASH_PATTERN,
        ...coded(ErrorCode.BadPasswordHash),
        description: 'a crypt(3) hash ($6$, $y$, $5$, $1$, bcrypt) or empty; never clear text',
      }),
    ),
  },
  { additionalProperties: false },
);

const Bmc = Type.Object(
  {
    type: Type.String({ maxLength: 32 }),
    address: Type.String({ maxLength: 253 }),
    username: Type.Optional(Type.String({ maxLength: 128 })),
    credentials: Type.Optional(
      Type.String({ maxLength: 63, description: 'a shared BMC credentials set (its password is never answered)' }),
    ),
    insecure: Type.Optional(
      Type.Boolean({ description: "Redfish: the BMC's TLS certificate is not checked (the operator's choice)" }),
    ),
    caFile: Type.Optional(
      Type.String({
        maxLength: 4096,
        description: "Redfish: absolute path of the PEM CA file for the BMC's certificate",
      }),
    ),
  },
  { additionalProperties: false },
);
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
    power: Type.Optional(
      Type.Object(
        {
          state: Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('unknown')]),
          checkedAt: Type.String({ format: 'date-time' }),
          error: Type.Optional(Type.String({ description: "why the state is unknown: the BMC error's code" })),
        },
        { description: "the BMC's last power reading (polled); absent until it was read" },
      ),
    ),
  },
  { $id: 'Host' },
);
export const HostInput = Type.Object(
  {
    hostname: Name.hostname,
    macs: Type.Array(Type.String({ maxLength: 17, pattern: PATTERN.mac }), { minItems: 1, maxItems: 16 }),
    ip: Type.Optional(Nullable(Ip)),
    network: Name.network,
    profile: Name.profile,
    smbiosUuid: Type.Optional(Nullable(Type.String({ maxLength: 36, pattern: PATTERN.uuid }))),
    bmc: Type.Optional(Type.Union([Bmc, Type.Null()])),
  },
  { additionalProperties: false },
);
export const HostQuery = Type.Object({
  site: Type.Optional(Type.String({ maxLength: 63 })),
  network: Type.Optional(Type.String({ maxLength: 63 })),
  state: Type.Optional(Type.Union(BUILD_STATES.map((s) => Type.Literal(s)))),
  q: Type.Optional(Type.String({ maxLength: 253, description: 'part of a hostname, an address or a MAC' })),
  limit: Type.Optional(
    Type.String({
      pattern: '^[1-9][0-9]{0,4}$',
      description: 'a page of at most this many hosts (the total is in X-Total-Count)',
    }),
  ),
  offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })),
});

/** Every name the inventory holds fits (hostnames: 253); the router refuses longer (414). */
export const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: HOSTNAME_MAX }) });

/** Ids are 32-bit serial columns: a larger number names nothing (404), it must not reach the store. */
export const MAX_ID = 2_147_483_647;
/** 1 … 2147483647 in decimal, digit by digit (a JSON schema cannot compare a string's value). */
const ID_PATTERN =
  '^([1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])$';
export const IdParams = Type.Object({ id: Type.String({ pattern: ID_PATTERN, description: `1 to ${MAX_ID}` }) });
export function idOf(text: string, what: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_ID)
    throw new KvmfleetError(ErrorCode.NotFound, `${what} ${text} does not exist`);
  return id;
}

const Counts = Type.Object({ created: Type.Integer(), updated: Type.Integer() });
export const ImportQuery = Type.Object({
  dryRun: Type.Optional(
    Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'true: check only, write nothing' }),
  ),
  mode: Type.Optional(
    Type.Union([Type.Literal('create'), Type.Literal('upsert')], {
      default: 'create',
      description: 'hosts: create fails on an existing hostname; upsert updates it',
    }),
  ),
});
export const SiteImportReply = Type.Object({
  dryRun: Type.Boolean(),
  sites: Counts,
  networks: Counts,
  profiles: Counts,
});
export const HostsImportReply = Type.Object({
  dryRun: Type.Boolean(),
  rows: Type.Integer(),
  created: Type.Integer(),
  updated: Type.Integer(),
});

export type SiteInputT = Static<typeof SiteInput>;
export type NetworkInputT = Static<typeof NetworkInput>;
export type HostInputT = Static<typeof HostInput>;

// Replies of the routes outside the inventory resources.
export const Health = Type.Object({ status: Type.Literal('ok'), version: Type.String() });
export const Ready = Type.Object({ status: Type.Union([Type.Literal('ready'), Type.Literal('store unreachable')]) });
export const ClusterNode = Type.Object({
  name: Type.String(),
  site: Nullable(Type.String()),
  roles: Type.Array(Type.String()),
  httpAddress: Nullable(Type.String()),
  apiUrl: Nullable(Type.String()),
  version: Type.String(),
  startedAt: Type.String(),
  seenAt: Type.String(),
  alive: Type.Boolean(),
  detail: Type.Record(Type.String(), Type.Unknown(), {
    description: 'what the node reports of itself (roles’ counters)',
  }),
});
/** DHCP counters: numbers per message type and reason, pool usage and failover state. */
export const DhcpStats = Type.Record(Type.String(), Type.Unknown(), {
  description: 'counters per message type, drops, policy, pools, lease writes, failover',
});
/** The X-Total-Count header of a paged list. */
export const TotalCountHeader = {
  'x-total-count': {
    type: 'integer',
    minimum: 0,
    description: 'the number of items of all pages (sent when the query asks for a page)',
  },
};
