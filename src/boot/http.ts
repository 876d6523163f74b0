/**
 * The boot HTTP role: iPXE scripts, Kickstarts, build callbacks, and install trees.
 * Everything here is reached by machines on the boot network, unauthenticated: a build token in
 * the URL is the only key, and a wrong or spent one gets a bare 403.
 */
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { normalizeMac } from '../fleet/mac.ts';
import { UUID } from '../fleet/validate-host.ts';
import { summarizeBootHttp, type BootHttpSummaryOptions } from '../logging/index.ts';
import { readiness } from '../store/health.ts';
import type { Store } from '../store/open.ts';
import { accelTarget } from './accel.ts';
import type { Platform } from './decide.ts';
import { bootLogSerializers } from './log-redact.ts';
import type { MirrorCache } from './mirror.ts';
import type { BootService } from './service.ts';
import { registerTrees } from './trees.ts';

export interface BootHttpOptions {
  readonly store: Store;
  readonly boot: BootService;
  /** Directory served under /trees/ (kernels, initrds, repositories). */
  readonly treesDir?: string | undefined;
  /** Base URL machines reach this role on; default: taken from each request's Host header. */
  readonly baseUrl?: string | undefined;
  /** Logging (the request serializer is always the redacting one); `stream` for tests. */
  readonly logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** The request summary's interval, clock and timers (tests); it runs whenever there is a logger. */
  readonly requestSummary?: BootHttpSummaryOptions;
  /** Caching proxy of upstream mirrors, under /mirror/NAME/. */
  readonly mirrors?: MirrorCache | undefined;
  /**
   * Addresses or CIDRs of the load balancers in front (HAProxy): X-Forwarded-For is believed only
   * on connections from them, and from anyone else ignored (the client cannot pick its address).
   */
  readonly trustProxy?: readonly string[] | undefined;
}

const FORBIDDEN = 'forbidden\n';

export async function buildBootHttp(options: BootHttpOptions): Promise<FastifyInstance> {
  // Machines send small requests: one that has not arrived whole in 30 s is a stuck or hostile client.
  const logger = options.logger
    ? { ...(typeof options.logger === 'object' ? options.logger : {}), serializers: bootLogSerializers }
    : false;
  const app = Fastify({
    logger,
    // A storm is thousands of requests a minute: each at debug, their counts at info (logging/boot-http.ts).
    disableRequestLogging: Boolean(logger),
    trustProxy: options.trustProxy?.length ? [...options.trustProxy] : false,
    bodyLimit: 64 * 1024,
    requestTimeout: 30_000,
  });
  if (logger) summarizeBootHttp(app, options.requestSummary);
  const baseUrl = (request: FastifyRequest) => options.baseUrl ?? `${request.protocol}://${request.host}`;
  const platformOf = (value: unknown): Platform | undefined =>
    value === 'pcbios' || value === 'efi' ? value : undefined;

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    // Client errors (a bad Range, a malformed URL) are answered as such.
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500)
      return reply.code(error.statusCode).type('text/plain').send(`${error.message}\n`);
    request.log.error({ err: error }, 'boot request failed');
    // A machine in iPXE reads a script: give it one that retries instead of a JSON error.
    return reply
      .code(500)
      .type('text/plain')
      .send(
        '#!ipxe\necho kvmfleet: server error, retrying in 30 s\nsleep 30\nchain --replace --autofree ${filename}\n',
      );
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).type('text/plain').send('not found\n'));

  app.get('/healthz', async () => ({ status: 'ok' }));
  // For load balancers: this node can answer boot requests only while the store answers.
  app.get('/readyz', async (_request, reply) => {
    const { statusCode, body } = await readiness(options.store.health);
    return reply.code(statusCode).send(body);
  });

  /** Text a machine must read fresh every time (scripts carry tokens; Kickstarts carry secrets). */
  const sendFresh = (reply: FastifyReply, text: string) =>
    reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(text);
  const sendScript = async (
    mac: string,
    request: FastifyRequest<{ Querystring: { platform?: string } }>,
    reply: FastifyReply,
  ) => {
    const { script } = await options.boot.script(mac, {
      clientIp: request.ip,
      platform: platformOf(request.query.platform),
      baseUrl: baseUrl(request),
    });
    return sendFresh(reply, script);
  };

  app.get<{ Params: { mac: string }; Querystring: { platform?: string } }>('/boot/:mac', async (request, reply) => {
    const mac = normalizeMac(request.params.mac);
    if (!mac) return reply.code(400).type('text/plain').send('bad MAC address\n');
    return sendScript(mac, request, reply);
  });

  app.get<{ Params: { uuid: string }; Querystring: { platform?: string } }>(
    '/boot/uuid/:uuid',
    async (request, reply) => {
      const uuid = request.params.uuid.toLowerCase();
      if (!UUID.test(uuid)) return reply.code(400).type('text/plain').send('bad UUID\n');
      const host = await options.boot.backend.hostByUuid(uuid);
      if (!host) return reply.code(404).type('text/plain').send('no host with that UUID; boot by MAC\n');
      return sendScript(host.mac, request, reply);
    },
  );

  app.get<{ Params: { token: string } }>('/boot/ks/:token', async (request, reply) => {
    const text = await options.boot.kickstart(request.params.token, baseUrl(request), request.ip);
    if (text === undefined) return reply.code(403).type('text/plain').send(FORBIDDEN);
    return sendFresh(reply, text);
  });

  app.get<{ Params: { token: string; which: string } }>('/boot/files/:token/:which', async (request, reply) => {
    const which = request.params.which;
    if (which !== 'kernel' && which !== 'initrd') return reply.code(404).type('text/plain').send('not found\n');
    const url = await options.boot.bootFile(request.params.token, which);
    if (url === undefined) return reply.code(403).type('text/plain').send(FORBIDDEN);
    // Behind the generated nginx (cluster/nginx.ts) nginx sends the tree file itself (boot/accel.ts).
    const accel = accelTarget(request, url);
    if (accel) return reply.header('x-accel-redirect', accel).header('cache-control', 'no-store').send();
    return reply.redirect(url, 302);
  });

  // Installers call back with whatever their HTTP client sends: curl -X POST sends no body, wget
  // --post-data a form body. The callback reads nothing from it, so any type is taken and dropped.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_request, _body, done) =>
    done(null, undefined),
  );
  app.post<{ Params: { token: string } }>('/boot/built/:token', async (request, reply) => {
    const hostname = await options.boot.built(request.params.token, request.ip);
    if (hostname === undefined) return reply.code(403).type('text/plain').send(FORBIDDEN);
    return reply.type('text/plain').send(`built: ${hostname}\n`);
  });

  // The install trees are served by trees.ts (ranges, validators, no dotfiles, nothing outside the
  // root). send (under @fastify/static) serves the mirror cache's files: Range, ETag, no dotfiles.
  const staticOptions = {
    index: false,
    dotfiles: 'deny',
    acceptRanges: true,
    etag: true,
    lastModified: true,
    cacheControl: false,
  } as const;
  if (options.treesDir) await registerTrees(app, { root: options.treesDir, prefix: '/trees/' });
  // reply.sendFile is needed by the mirror route.
  await app.register(fastifyStatic, {
    ...staticOptions,
    root: process.cwd(),
    prefix: '/-/',
    serve: false,
    decorateReply: true,
  });
  const mirrors = options.mirrors;
  if (mirrors) {
    app.get<{ Params: { name: string; '*': string } }>('/mirror/:name/*', async (request, reply) => {
      const result = await mirrors.resolve(request.params.name, request.params['*']);
      if (!result.ok) return reply.code(result.status).type('text/plain').send(`${result.detail}\n`);
      return reply.sendFile(result.path, result.root, staticOptions);
    });
  }
  return app;
}
