/** Bulk imports: a site YAML and a hosts CSV, posted as the file's text. All or nothing. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '../../errors.ts';
import type { Kysely } from 'kysely';
import { importHostsCsv, importSiteYaml } from '../../import/apply.ts';
import type { Database } from '../../store/schema.ts';
import { errorReplies, HostsImportReply, ImportQuery, SiteImportReply } from '../schemas.ts';

const errors = errorReplies(422);
const YAML_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml', 'text/plain'];
const CSV_TYPES = ['text/csv', 'text/plain'];
const TEXT_TYPES = [...new Set([...YAML_TYPES, ...CSV_TYPES])];
/** A body that is the file's text, in one of these media types (anything else: 415). */
const textBody = (types: string[], description: string) => ({
  description,
  content: Object.fromEntries(types.map((type) => [type, { schema: { type: 'string', description } }])),
});

interface ImportQueryT {
  dryRun?: 'true' | 'false';
  mode?: 'create' | 'upsert';
}

/** Fastify validates a body per media type only for the types a route lists: refuse the others (415), JSON included. */
const onlyTypes = (types: string[]) => async (request: FastifyRequest, reply: FastifyReply) => {
  const type = request.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
  if (type !== undefined && !types.includes(type))
    return reply
      .code(415)
      .send({ error: { code: ErrorCode.BadRequest, message: `this import takes ${types.join(', ')}, not ${type}` } });
};

export function registerImportRoutes(app: FastifyInstance, db: Kysely<Database>): void {
  app.addContentTypeParser(TEXT_TYPES, { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.post(
    '/api/v1/import/site',
    {
      config: { permission: 'write' },
      preValidation: onlyTypes(YAML_TYPES),
      schema: {
        tags: ['import'],
        summary: 'Apply a site YAML (sites, networks, profiles)',
        querystring: ImportQuery,
        body: textBody(YAML_TYPES, 'the site YAML (deploy/example-site.yaml)'),
        response: { 200: SiteImportReply, ...errors },
      },
    },
    async (request) => {
      const query = request.query as ImportQueryT;
      return importSiteYaml(db, String(request.body ?? ''), { dryRun: query.dryRun === 'true' });
    },
  );

  app.post(
    '/api/v1/import/hosts',
    {
      config: { permission: 'write' },
      preValidation: onlyTypes(CSV_TYPES),
      schema: {
        tags: ['import'],
        summary: 'Import a hosts CSV',
        querystring: ImportQuery,
        body: textBody(CSV_TYPES, 'the hosts CSV: a header row (hostname,mac,ip,network,profile,…) and a host per row'),
        response: { 200: HostsImportReply, ...errors },
      },
    },
    async (request) => {
      const query = request.query as ImportQueryT;
      const started = Date.now();
      const result = await importHostsCsv(db, String(request.body ?? ''), {
        mode: query.mode ?? 'create',
        dryRun: query.dryRun === 'true',
        onProgress: (done, total) => request.log.info({ done, total }, 'hosts import progress'),
      });
      request.log.info({ ...result, ms: Date.now() - started }, 'hosts import finished');
      return result;
    },
  );
}
