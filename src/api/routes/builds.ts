/** Build operations on the API: rebuild, timeline, admission queue, and previews of what a host will get. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { buildProgress, hostTimeline, operatorMarkBuilt, requestRebuild, siteBuilds } from '../../fleet/builds.ts';
import { adoptHost } from '../../fleet/adopt.ts';
import { PREVIEW_TOKEN, type BootService } from '../../boot/service.ts';
import type { Database } from '../../store/schema.ts';
import { errorReplies, Ipv4, Name, NameParams, textReply } from '../schemas.ts';
import { PATTERN } from '../../fleet/validate-names.ts';

const adoptErrors = errorReplies(404, 409, 422);

const errors = errorReplies(404, 422);
const markBuiltErrors = errorReplies(404, 409);
const MarkBuiltReply = Type.Object(
  {
    hostname: Type.String(),
    buildState: Type.Literal('built'),
    was: Type.Union([Type.Literal('building'), Type.Literal('failed')], {
      description: 'the state it was marked built from',
    }),
  },
  { additionalProperties: false },
);
const Timeline = Type.Array(
  Type.Object({
    at: Type.String({ format: 'date-time' }),
    kind: Type.String(),
    detail: Type.Record(Type.String(), Type.Unknown()),
  }),
);
const Count = Type.Integer({ minimum: 0 });
const BuildProgress = Type.Array(
  Type.Object({
    site: Type.String(),
    cap: Type.Integer(),
    hosts: Count,
    counts: Type.Object({
      discovered: Count,
      ready: Count,
      queued: Count,
      building: Count,
      built: Count,
      failed: Count,
    }),
  }),
);
const AdoptBody = Type.Object(
  {
    hostname: Name.hostname,
    profile: Name.profile,
    network: Type.Optional(
      Type.String({
        maxLength: 63,
        pattern: PATTERN.networkName,
        description: 'default: the network it was discovered on',
      }),
    ),
    ip: Type.Optional(Type.Union([Ipv4, Type.Null()], { description: 'reserved address (outside the dynamic range)' })),
    smbiosUuid: Type.Optional(Type.Union([Type.String({ maxLength: 36, pattern: PATTERN.uuid }), Type.Null()])),
  },
  { additionalProperties: false },
);
const SiteBuilds = Type.Object({
  site: Type.String(),
  cap: Type.Integer(),
  building: Type.Array(Type.Object({ hostname: Type.String(), since: Type.String() })),
  queued: Type.Array(Type.Object({ hostname: Type.String(), position: Type.Integer(), since: Type.String() })),
});

export function registerBuildRoutes(
  app: FastifyInstance,
  db: Kysely<Database>,
  boot: BootService,
  bootBaseUrl: string,
): void {
  app.post(
    '/api/v1/hosts/:name/rebuild',
    {
      config: { permission: 'write' },
      schema: {
        tags: ['builds'],
        summary: 'Install the host again at its next network boot',
        params: NameParams,
        response: { 202: Type.Object({ hostname: Type.String(), buildState: Type.String() }), ...errors },
      },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      await requestRebuild(db, name, 'api');
      reply.code(202);
      return { hostname: name, buildState: 'ready' };
    },
  );
  // The install ran but its callback never came (or came after the timeout with a rotated token):
  // the operator vouches for it. Audited like every write; on the host's timeline as a manual "built".
  app.post(
    '/api/v1/hosts/:name/mark-built',
    {
      config: { permission: 'write' },
      schema: {
        tags: ['builds'],
        summary:
          'Declare a building or failed host built (its install finished but its callback was lost); registers its hypervisor',
        params: NameParams,
        response: { 200: MarkBuiltReply, ...markBuiltErrors },
      },
    },
    (request) => operatorMarkBuilt(db, (request.params as { name: string }).name, request.principal?.user ?? 'api'),
  );
  app.post(
    '/api/v1/hosts/:name/adopt',
    {
      config: { permission: 'write' },
      schema: {
        tags: ['builds'],
        summary: 'Adopt a discovered machine: name, network, address, profile; it installs at its next retry',
        params: NameParams,
        body: AdoptBody,
        response: { 200: { $ref: 'Host#' }, ...adoptErrors },
      },
    },
    (request) =>
      adoptHost(
        db,
        (request.params as { name: string }).name,
        request.body as Static<typeof AdoptBody>,
        request.principal?.user ?? 'api',
      ),
  );
  app.get(
    '/api/v1/build-progress',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['builds'],
        summary: 'Per site: hosts discovered, ready, queued, building, built, failed, and the build cap',
        response: { 200: BuildProgress },
      },
    },
    () => buildProgress(db, boot.policy),
  );
  app.get(
    '/api/v1/hosts/:name/timeline',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['builds'],
        summary: 'Boot and build events of a host',
        params: NameParams,
        response: { 200: Timeline, ...errors },
      },
    },
    (request) => hostTimeline(db, (request.params as { name: string }).name),
  );
  app.get(
    '/api/v1/sites/:name/builds',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['builds'],
        summary: 'Hosts building and queued at a site (admission control)',
        params: NameParams,
        response: { 200: SiteBuilds, ...errors },
      },
    },
    (request) => siteBuilds(db, (request.params as { name: string }).name, boot.policy),
  );
  app.get(
    '/api/v1/hosts/:name/boot-script',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['builds'],
        summary: 'The iPXE script the host would get now (no side effects; placeholder token)',
        params: NameParams,
        querystring: Type.Object({
          platform: Type.Optional(Type.Union([Type.Literal('pcbios'), Type.Literal('efi')])),
        }),
        response: { 200: textReply('text/plain', 'an iPXE script'), ...errors },
      },
    },
    async (request, reply) => {
      const { script } = await boot.preview(
        (request.params as { name: string }).name,
        bootBaseUrl,
        (request.query as { platform?: 'pcbios' | 'efi' }).platform,
      );
      return reply.type('text/plain; charset=utf-8').send(script);
    },
  );
  app.get(
    '/api/v1/hosts/:name/kickstart',
    {
      config: { permission: 'write' },
      schema: {
        tags: ['builds'],
        summary: "The host's Kickstart (placeholder token)",
        params: NameParams,
        response: { 200: textReply('text/plain', 'a Kickstart file'), ...errors },
      },
    },
    async (request, reply) => {
      const text = await boot.renderKickstart((request.params as { name: string }).name, PREVIEW_TOKEN, bootBaseUrl);
      return reply.type('text/plain; charset=utf-8').send(text);
    },
  );
}
