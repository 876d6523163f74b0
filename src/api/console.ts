/**
 * The web console (console/, React + Vite) served by the api role under /console/: its files are
 * public (the data behind them needs a token like any API call). Built by `npm run build:console`,
 * which `npm ci` runs (prepare); when the build is missing the page says how to make it.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { declareScopePermission } from './permissions.ts';

export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/dist', import.meta.url));

// The console loads only its own files and talks only to this API: nothing inline, no framing.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export async function registerConsole(app: FastifyInstance, dir = DEFAULT_CONSOLE_DIR): Promise<void> {
  app.get('/', { config: { permission: 'public' }, schema: { hide: true } }, (_request, reply) =>
    reply.redirect('/console/'),
  );
  if (!existsSync(join(dir, 'index.html'))) {
    app.get('/console/*', { config: { permission: 'public' }, schema: { hide: true } }, (_request, reply) =>
      reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(
          'The web console is not built: run `npm run build:console` in the kvmfleet directory (npm ci does it), then reload.\nThe API and the CLI work without it.\n',
        ),
    );
    return;
  }
  await app.register(async (scope) => {
    declareScopePermission(scope, 'public'); // the console's files; its data needs a token like any call
    scope.addHook('onSend', async (request, reply) => {
      reply.headers(SECURITY_HEADERS);
      // Vite names assets by content hash: cache them for good; index.html must be revalidated.
      reply.header(
        'cache-control',
        request.url.startsWith('/console/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    });
    await scope.register(fastifyStatic, {
      root: dir,
      prefix: '/console/',
      redirect: true,
      index: 'index.html',
      cacheControl: false,
      dotfiles: 'deny',
      schemaHide: true,
    });
  });
}
