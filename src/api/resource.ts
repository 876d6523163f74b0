/**
 * One REST resource of the inventory: list, show, create, update, delete by name,
 * with schemas for validation and the OpenAPI document. Each inventory kind is one table of these.
 */
import type { TSchema } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { errorReplies, NameParams, TotalCountHeader } from './schemas.ts';

export interface ResourceSpec<T, Input, Patch, Query> {
  /** Plural path segment: /api/v1/{plural} */
  readonly plural: string;
  readonly schema: TSchema;
  readonly input: TSchema;
  readonly patch?: TSchema;
  readonly query?: TSchema;
  list(db: Kysely<Database>, query: Query): Promise<T[]>;
  /** The number of items of all pages, sent as X-Total-Count when the query asks for a page (undefined: not paged). */
  count?(db: Kysely<Database>, query: Query): Promise<number | undefined>;
  get(db: Kysely<Database>, name: string): Promise<T>;
  create(db: Kysely<Database>, input: Input): Promise<T>;
  update?(db: Kysely<Database>, name: string, patch: Patch): Promise<T>;
  remove(db: Kysely<Database>, name: string): Promise<void>;
}

// Beyond the errors every route has (api/responses.ts): a name taken or in use, a rule of the inventory broken.
const writeErrors = errorReplies(409, 422);

/** Headers of a server-sent event stream; HTTP/2 forbids connection headers (the stream is the connection's). */
export function eventStreamHeaders(httpVersionMajor: number): Record<string, string> {
  return {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    ...(httpVersionMajor < 2 ? { connection: 'keep-alive' } : {}),
  };
}

export function registerResource<T, Input, Patch, Query>(
  app: FastifyInstance,
  db: Kysely<Database>,
  spec: ResourceSpec<T, Input, Patch, Query>,
): void {
  const base = `/api/v1/${spec.plural}`;
  const tags = [spec.plural];
  const item = { $ref: `${(spec.schema as { $id: string }).$id}#` };
  const kind = (spec.schema as { $id: string }).$id.toLowerCase();

  app.get(
    base,
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: `List ${spec.plural}`,
        ...(spec.query ? { querystring: spec.query } : {}),
        response: {
          200: { ...Type.Array(Type.Ref(spec.schema)), ...(spec.count ? { headers: TotalCountHeader } : {}) },
        },
      },
    },
    async (request, reply) => {
      const query = request.query as Query;
      const total = await spec.count?.(db, query);
      if (total !== undefined) reply.header('x-total-count', String(total));
      return spec.list(db, query);
    },
  );
  app.get(
    `${base}/:name`,
    {
      config: { permission: 'read' },
      schema: { tags, summary: `One ${kind} by name`, params: NameParams, response: { 200: item } },
    },
    (request) => spec.get(db, (request.params as { name: string }).name),
  );
  app.post(
    base,
    {
      config: { permission: 'write' },
      schema: { tags, summary: `Create a ${kind}`, body: spec.input, response: { 201: item, ...writeErrors } },
    },
    async (request, reply) => {
      reply.code(201);
      return spec.create(db, request.body as Input);
    },
  );
  const update = spec.update;
  if (update && spec.patch) {
    app.patch(
      `${base}/:name`,
      {
        config: { permission: 'write' },
        schema: {
          tags,
          summary: `Change a ${kind}`,
          params: NameParams,
          body: spec.patch,
          response: { 200: item, ...writeErrors },
        },
      },
      (request) => update(db, (request.params as { name: string }).name, request.body as Patch),
    );
  }
  app.delete(
    `${base}/:name`,
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: `Delete a ${kind} (refused while in use: 409)`,
        params: NameParams,
        response: { 204: { type: 'null', description: 'deleted' }, ...errorReplies(409) },
      },
    },
    async (request, reply) => {
      await spec.remove(db, (request.params as { name: string }).name);
      reply.code(204);
      return null;
    },
  );
}
