/** The REST API: inventory resources, imports, health, and the OpenAPI document at /openapi.json. */
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
} from 'fastify';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import * as hosts from '../fleet/hosts.ts';
import type { Host, HostInput, Network, NetworkInput, Profile, ProfileInput, Site, SiteInput } from '../fleet/model.ts';
import { Type, type Static } from '@sinclair/typebox';
import * as networks from '../fleet/networks.ts';
import * as profiles from '../fleet/profiles.ts';
import * as sites from '../fleet/sites.ts';
import { readiness } from '../store/health.ts';
import type { Store } from '../store/open.ts';
import { VERSION } from '../version.ts';
import { eventStreamHeaders, registerResource } from './resource.ts';
import * as S from './schemas.ts';
import { registerImportRoutes } from './routes/imports.ts';
import { registerBuildRoutes } from './routes/builds.ts';
import { registerLeaseRoutes } from './routes/leases.ts';
import { registerVmRoutes, type VmRouteDeps } from './routes/vms.ts';
import { registerPowerRoutes } from './routes/power.ts';
import { registerSitePowerRoutes } from './routes/site-power.ts';
import type { BmcDeps } from '../bmc/power.ts';
import { listNodes } from '../cluster/nodes.ts';
import { registerAuth } from './auth.ts';
import { isStoreUnavailable, STORE_RETRY_AFTER_S } from '../store/unavailable.ts';
import { auditRouterRefusal, registerAuditHooks } from './audit-hooks.ts';
import { requirePermissionDeclarations, type RoutePermission } from './permissions.ts';
import { MethodIndex } from './method-index.ts';
import { registerNulGuard } from './nul-guard.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { EVENT_TYPES, type EventHub, type LiveEvent } from './events.ts';
import { haproxyConfig } from '../cluster/haproxy.ts';
import { DEFAULT_NGINX_TREES_DIR, nginxConfig } from '../cluster/nginx.ts';
import { registerConsole } from './console.ts';
import type { BootService } from '../boot/service.ts';
import type { Metrics } from '../metrics.ts';
import type { TlsMaterial } from './tls.ts';
import { documentCommonErrors } from './responses.ts';
import { codedRuleOf, messageOf } from './coded-rules.ts';

export interface ApiOptions {
  readonly store: Store;
  readonly boot: BootService;
  /** Base URL of the boot HTTP role, for previews of scripts and Kickstarts. */
  readonly bootBaseUrl: string;
  readonly metrics?: Metrics;
  /** The DHCP role's counters and pool usage, when it runs in this process. */
  readonly dhcpStats?: (() => unknown) | undefined;
  readonly logger?: FastifyServerOptions['logger'];
  /** Hypervisors, VMs, templates and jobs (absent: those routes are not served). */
  readonly vms?: VmRouteDeps;
  /** The API listens beyond loopback: every request needs a token. */
  readonly authAlwaysRequired?: boolean;
  /** Live events for GET /api/v1/events. */
  readonly events?: EventHub;
  /** The built web console (default: console/dist of this checkout). */
  readonly consoleDir?: string;
  /** Serve HTTPS with this certificate and key (api/tls.ts). */
  readonly https?: TlsMaterial | undefined;
  /** BMC passwords' keyring and IPMI timing (absent: the keyring comes from KVMFLEET_SECRET_KEY only). */
  readonly bmc?: BmcDeps;
}

/** Bodies of imports may be large (a CSV of tens of thousands of hosts). */
const BODY_LIMIT = 64 * 1024 * 1024;
/** Enough to upload the largest import over a slow link. */
const REQUEST_TIMEOUT_MS = 120_000;

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  // With a certificate the server speaks HTTP/2 and HTTP/1.1 (ALPN) over TLS; the routes and hooks
  // are the same, so the instance is typed as the plain one (Fastify's types split on the server kind).
  const fastify = Fastify as unknown as (
    opts: FastifyServerOptions & { http2?: boolean; https?: TlsMaterial & { allowHTTP1: boolean } },
  ) => FastifyInstance;
  const app = fastify({
    ...(options.https ? { http2: true, https: { ...options.https, allowHTTP1: true } } : {}),
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT,
    // A request must arrive whole within this (a slow client cannot hold a connection for ever);
    // long answers (event streams) are not bounded by it.
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Names may be 253 characters (hostnames), and every path that names one must take it (default: 100, then 414).
    routerOptions: { maxParamLength: 256 },
    // No type coercion: a number where a string belongs is an error, not a silent conversion.
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: true,
        keywords: [S.ERROR_CODE_KEYWORD],
      },
    },
    // What the router refuses before any route runs (a parameter beyond maxParamLength, a URL that
    // does not decode) is answered in the API's one error shape too, and audited when it is a mutation.
    frameworkErrors: (error, request, reply: FastifyReply) => {
      const status = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
      void auditRouterRefusal(options.store.db, request, status).finally(() =>
        reply.code(status).send({
          error: {
            code: ErrorCode.BadRequest,
            message:
              status === 414
                ? 'a path parameter is longer than any name (at most 253 characters)'
                : 'the URL does not decode',
          },
        }),
      );
    },
  });
  const { db } = options.store;

  documentCommonErrors(app); // before swagger's own onRoute hook, which reads the schemas it completes
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'kvmfleet',
        version: VERSION,
        description:
          'Provision KVM fleets: inventory, network boot, VMs. Every error answer is the Error schema, matched by its stable code. A method a path does not serve answers 405 with Allow.',
      },
      tags: [
        { name: 'sites' },
        { name: 'networks' },
        { name: 'profiles' },
        { name: 'hosts' },
        { name: 'import' },
        { name: 'builds' },
        { name: 'dhcp' },
        { name: 'vms' },
        { name: 'jobs' },
        { name: 'auth' },
        { name: 'health' },
      ],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API token, kvmf_… (kvmfleet user add --with-token, token create, login)',
          },
        },
      },
    },
    // Each operation says what it needs: no security for public routes, else a bearer token holding the route's permission.
    transform: ({ schema, url, route }) => ({
      schema: withSecurity(
        schema as Record<string, unknown>,
        route.config?.permission,
        [route.method].flat().join('_'),
        url,
      ) as never,
      url,
    }),
    // Name shared schemas by their $id in the document, not def-0, def-1…
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  for (const schema of [S.ErrorReply, S.Site, S.Network, S.Profile, S.Host]) app.addSchema(schema);

  app.setErrorHandler((error: FastifyError | KvmfleetError, request, reply) => {
    if (error instanceof KvmfleetError) {
      return reply.code(error.httpStatus).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.details !== undefined ? { details: error.details } : {}),
        },
      });
    }
    const validation = (error as FastifyError).validation;
    if (validation) {
      // A rule with its own code (a package name, a crypt hash, control characters) is a 422 with it.
      const code = codedRuleOf(
        request.routeOptions.schema,
        (error as FastifyError).validationContext,
        validation[0]?.schemaPath,
      );
      if (code)
        return reply.code(422).send({
          error: {
            code,
            message: `${(error as FastifyError).validationContext ?? 'input'}${validation[0]!.instancePath}: ${messageOf(code)}`,
          },
        });
      return reply.code(400).send({ error: { code: ErrorCode.BadRequest, message: error.message } });
    }
    const status = (error as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      return reply.code(status).send({ error: { code: ErrorCode.BadRequest, message: error.message } });
    }
    if (isStoreUnavailable(error)) {
      request.log.warn({ err: error }, 'the store does not answer');
      return reply
        .code(503)
        .header('retry-after', String(STORE_RETRY_AFTER_S))
        .send({ error: { code: ErrorCode.StoreUnavailable, message: 'the store does not answer; try again' } });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.code(500).send({ error: { code: ErrorCode.Internal, message: 'internal error; see the server log' } });
  });
  const methods = new MethodIndex();
  methods.watch(app);
  app.setNotFoundHandler((request, reply) => {
    const allowed = methods.allowed(request.url.split('?')[0]!);
    if (allowed.length)
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({
          error: {
            code: ErrorCode.MethodNotAllowed,
            message: `${request.method} is not served here: use ${allowed.join(', ')}`,
          },
        });
    return reply
      .code(404)
      .send({ error: { code: ErrorCode.NotFound, message: `no route ${request.method} ${request.url}` } });
  });
  registerNulGuard(app);

  requirePermissionDeclarations(app);
  registerAuth(app, db, { alwaysRequired: options.authAlwaysRequired ?? false });
  registerAuditHooks(app, db);
  registerAuthRoutes(app, db);
  app.get(
    '/healthz',
    {
      config: { permission: 'public' },
      schema: { tags: ['health'], summary: 'The process is up', response: { 200: S.Health } },
    },
    async () => ({ status: 'ok', version: VERSION }),
  );
  app.get(
    '/readyz',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['health'],
        summary: 'The store answers (for load balancers)',
        response: { 200: S.Ready, 503: { ...S.Ready, description: 'the store does not answer' } },
      },
    },
    async (_request, reply) => {
      const { statusCode, body } = await readiness(options.store.health);
      return reply.code(statusCode).send(body);
    },
  );
  app.get(
    '/api/v1/nodes',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['health'],
        summary: 'kvmfleet processes, their roles and whether they are alive',
        querystring: Type.Object({
          site: Type.Optional(Type.String({ maxLength: 63 })),
          role: Type.Optional(Type.String({ maxLength: 16 })),
        }),
        response: { 200: Type.Array(S.ClusterNode) },
      },
    },
    (request) => listNodes(db, request.query as { site?: string; role?: string }),
  );
  app.get(
    '/api/v1/sites/:name/haproxy.cfg',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['sites'],
        summary: "HAProxy configuration for the site's live boot HTTP nodes",
        params: S.NameParams,
        querystring: Type.Object({
          bind: Type.Optional(Type.String({ maxLength: 64 })),
          stats: Type.Optional(Type.String({ maxLength: 64 })),
          checkIntervalMs: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{1,5}$' })),
        }),
        response: { 200: S.textReply('text/plain', 'haproxy.cfg'), ...S.errorReplies(422) },
      },
    },
    async (request, reply) => {
      const site = await sites.getSite(db, (request.params as { name: string }).name);
      const query = request.query as { bind?: string; stats?: string; checkIntervalMs?: string };
      const nodes = (await listNodes(db, { site: site.name, role: 'http', aliveOnly: true }))
        .filter((n) => n.httpAddress)
        .map((n) => ({ name: n.name, address: n.httpAddress! }));
      try {
        return reply.type('text/plain; charset=utf-8').send(
          haproxyConfig(nodes, {
            site: site.name,
            ...(query.bind ? { bind: query.bind } : {}),
            ...(query.stats ? { statsBind: query.stats } : {}),
            ...(query.checkIntervalMs ? { checkIntervalMs: Number(query.checkIntervalMs) } : {}),
          }),
        );
      } catch (error) {
        throw new KvmfleetError(ErrorCode.Validation, (error as Error).message);
      }
    },
  );
  app.get(
    '/api/v1/sites/:name/nginx.conf',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['sites'],
        summary: "nginx configuration serving the site's install trees itself, in front of its live boot HTTP nodes",
        params: S.NameParams,
        querystring: Type.Object({
          listen: Type.Optional(Type.String({ maxLength: 64 })),
          treesDir: Type.Optional(Type.String({ maxLength: 4096 })),
        }),
        response: { 200: S.textReply('text/plain', 'nginx.conf'), ...S.errorReplies(422) },
      },
    },
    async (request, reply) => {
      const site = await sites.getSite(db, (request.params as { name: string }).name);
      const query = request.query as { listen?: string; treesDir?: string };
      const nodes = (await listNodes(db, { site: site.name, role: 'http', aliveOnly: true }))
        .filter((n) => n.httpAddress)
        .map((n) => ({ name: n.name, address: n.httpAddress! }));
      try {
        return reply.type('text/plain; charset=utf-8').send(
          nginxConfig(nodes, {
            site: site.name,
            treesDir: query.treesDir ?? DEFAULT_NGINX_TREES_DIR,
            ...(query.listen ? { listen: query.listen } : {}),
          }),
        );
      } catch (error) {
        throw new KvmfleetError(ErrorCode.Validation, (error as Error).message);
      }
    },
  );
  app.get('/openapi.json', { config: { permission: 'public' }, schema: { hide: true } }, async () => app.swagger());
  app.get(
    '/metrics',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        response: { 200: S.textReply('text/plain', 'Prometheus text exposition format 0.0.4') },
      },
    },
    async (_request, reply) => reply.type('text/plain; version=0.0.4').send(options.metrics?.render() ?? ''),
  );
  app.get(
    '/api/v1/dhcp/stats',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['health'],
        summary: 'DHCP counters per message type, drops, pool usage',
        response: { 200: S.DhcpStats, ...S.errorReplies(404) },
      },
    },
    async () => {
      if (!options.dhcpStats) throw new KvmfleetError(ErrorCode.NotFound, 'the dhcp role does not run in this process');
      return options.dhcpStats();
    },
  );

  registerResource<Site, SiteInput, Partial<SiteInput>, unknown>(app, db, {
    plural: 'sites',
    schema: S.Site,
    input: S.SiteInput,
    patch: S.SitePatch,
    list: (db) => sites.listSites(db),
    get: sites.getSite,
    create: sites.createSite,
    update: sites.updateSite,
    remove: sites.deleteSite,
  });
  registerResource<Network, NetworkInput, Partial<NetworkInput>, { site?: string }>(app, db, {
    plural: 'networks',
    schema: S.Network,
    input: S.NetworkInput,
    patch: S.NetworkPatch,
    query: Type.Object({ site: Type.Optional(Type.String({ maxLength: 63 })) }),
    list: networks.listNetworks,
    get: networks.getNetwork,
    create: networks.createNetwork,
    update: networks.updateNetwork,
    remove: networks.deleteNetwork,
  });
  registerResource<Profile, ProfileInput, never, unknown>(app, db, {
    plural: 'profiles',
    schema: S.Profile,
    input: S.ProfileInput,
    list: (db) => profiles.listProfiles(db),
    get: profiles.getProfile,
    create: profiles.createProfile,
    remove: profiles.deleteProfile,
  });
  registerResource<Host, HostInput, never, Static<typeof S.HostQuery>>(app, db, {
    plural: 'hosts',
    schema: S.Host,
    input: S.HostInput,
    query: S.HostQuery,
    list: (db, query) => hosts.listHosts(db, hostFilter(query)),
    count: async (db, query) => (query.limit ? hosts.countHosts(db, hostFilter(query)) : undefined),
    get: hosts.getHost,
    create: hosts.createHost,
    remove: hosts.deleteHost,
  });
  registerImportRoutes(app, db);
  registerBuildRoutes(app, db, options.boot, options.bootBaseUrl);
  registerLeaseRoutes(app, db);
  if (options.vms) registerVmRoutes(app, options.vms);
  if (options.vms) registerSitePowerRoutes(app, db, options.vms.jobs);
  registerPowerRoutes(app, db, options.bmc);
  if (options.events) registerEventStream(app, options.events);
  await registerConsole(app, options.consoleDir);
  return app;
}

/** An operation's security, permission and id in the OpenAPI document, from its route's declaration. */
function withSecurity(
  schema: Record<string, unknown> | undefined,
  permission: RoutePermission | undefined,
  method: string,
  url: string,
): Record<string, unknown> {
  const base = schema ?? {};
  const operationId = `${method.toLowerCase()}${url.replace(/[^A-Za-z0-9]+([A-Za-z0-9])?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`;
  if (permission === 'public') return { ...base, operationId, security: [], 'x-permission': 'public' };
  const needs = `Needs a token with the ${permission ?? 'admin'} permission.`;
  return {
    ...base,
    operationId,
    security: [{ bearer: [] }],
    'x-permission': permission ?? 'admin',
    description: base.description ? `${String(base.description)} ${needs}` : needs,
  };
}

/** Query strings arrive as text: a page's bounds become numbers. */
function hostFilter(query: Static<typeof S.HostQuery>): hosts.HostFilter {
  return {
    ...query,
    limit: query.limit ? Number(query.limit) : undefined,
    offset: query.offset ? Number(query.offset) : undefined,
  };
}

/** Server-sent events: one `event: TYPE` + JSON data per live event, a comment every 15 s to keep proxies from closing it. */
function registerEventStream(app: FastifyInstance, hub: EventHub): void {
  app.get(
    '/api/v1/events',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['health'],
        summary: 'Live events (server-sent events): host, activity, job, vm',
        querystring: Type.Object({
          types: Type.Optional(Type.String({ maxLength: 256, pattern: '^[a-z]+(,[a-z]+)*$' })),
        }),
        response: {
          200: S.eventStreamReply(`events of the types asked (${EVENT_TYPES.join(', ')})`),
          ...S.errorReplies(422),
        },
      },
    },
    async (request, reply) => {
      const wanted = new Set(((request.query as { types?: string }).types ?? EVENT_TYPES.join(',')).split(','));
      const unknown = [...wanted].filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
      if (unknown.length)
        throw new KvmfleetError(
          ErrorCode.Validation,
          `unknown event type(s) ${unknown.join(', ')}: use ${EVENT_TYPES.join(', ')}`,
        );
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { ...eventStreamHeaders(request.raw.httpVersionMajor), 'x-accel-buffering': 'no' });
      res.write(': kvmfleet live events\n\n');
      const onEvent = (event: LiveEvent) => {
        if (wanted.has(event.type)) res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      };
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      hub.on('event', onEvent);
      request.raw.on('close', () => {
        clearInterval(keepAlive);
        hub.off('event', onEvent);
      });
    },
  );
}
