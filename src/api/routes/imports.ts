/** Bulk imports: a site YAML and a hosts CSV, posted as the file's text. All or nothing. */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { importHostsCsv, importSiteYaml } from '../../import/apply.ts';
import type { Database } from '../../store/schema.ts';
import { errorReplies, HostsImportReply, ImportQuery, SiteImportReply } from '../schemas.ts';

const errors = errorReplies(400, 422);
const TEXT_TYPES = ['text/csv', 'text/yaml', 'application/yaml', 'application/x-yaml', 'text/plain'];

interface ImportQueryT {
  dryRun?: 'true' | 'false';
  mode?: 'create' | 'upsert';
}

export function registerImportRoutes(app: FastifyInstance, db: Kysely<Database>): void {
  app.addContentTypeParser(TEXT_TYPES, { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.post(
    '/api/v1/import/site',
    { config: { permission: 'write' }, schema: { tags: ['import'], summary: 'Apply a site YAML (sites, networks, profiles)', querystring: ImportQuery, consumes: ['application/yaml', 'text/yaml'], response: { 200: SiteImportReply, ...errors } } },
    async (request) => {
      const query = request.query as ImportQueryT;
      return importSiteYaml(db, String(request.body ?? ''), { dryRun: query.dryRun === 'true' });
    },
  );

  app.post(
    '/api/v1/import/hosts',
    { config: { permission: 'write' }, schema: { tags: ['import'], summary: 'Import a hosts CSV', querystring: ImportQuery, consumes: ['text/csv'], response: { 200: HostsImportReply, ...errors } } },
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
