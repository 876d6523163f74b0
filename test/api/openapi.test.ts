/**
 * The OpenAPI document is the contract: fetched from a real server (every route group served), it
 * is valid OpenAPI 3.0.3 (@seriousme/openapi-schema-validator), and each operation has an id, a
 * summary, its permission (x-permission and the bearer requirement), a 2xx, and the error answers
 * the shared hooks can give it, each with its media type and schema. The input patterns agree with
 * the server's own parsers. A failure names the operation and what it lacks.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import fc from 'fast-check';
import { normalizeMac } from '../../src/fleet/mac.ts';
import { PATTERN } from '../../src/fleet/validate-names.ts';
import { parseCidr, parseIpv4 } from '../../src/protocols/ipv4.ts';
import { startTestApi, type TestApi } from '../helpers/api-server.ts';

type Responses = Record<string, { content?: Record<string, { schema?: unknown }>; headers?: Record<string, unknown> }>;
interface Operation {
  operationId?: string;
  summary?: string;
  security?: Record<string, string[]>[];
  'x-permission'?: string;
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses: Responses;
}

let api: TestApi;
let doc: {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme: string }> };
};

before(async () => {
  api = await startTestApi({ all: true });
  const reply = await fetch(`http://127.0.0.1:${api.port}/openapi.json`);
  assert.equal(reply.status, 200);
  doc = (await reply.json()) as typeof doc;
});
after(async () => api.close());

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];
const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, method, path, op })),
  );

test('the document is valid OpenAPI 3.0.3', async () => {
  const result = await new Validator().validate(structuredClone(doc) as never);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2)?.slice(0, 4000));
  assert.ok(operations().length >= 60, `${operations().length} operations`);
  assert.deepEqual(doc.components.securitySchemes.bearer, {
    ...doc.components.securitySchemes.bearer,
    type: 'http',
    scheme: 'bearer',
  });
});

test('every operation: operationId, summary, permission, a 2xx and each error it can give, with media types and schemas', () => {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const { name, method, path, op } of operations()) {
    const lack = (what: string) => problems.push(`${name} (${op.operationId ?? 'no operationId'}): ${what}`);
    if (!op.operationId) lack('no operationId');
    else if (ids.has(op.operationId)) lack(`operationId ${op.operationId} is not unique`);
    else ids.add(op.operationId);
    if (!op.summary?.trim()) lack('no summary');
    const permission = op['x-permission'];
    if (!['public', 'read', 'write', 'admin'].includes(permission ?? '')) lack(`x-permission is ${permission}`);
    const bearer = (op.security ?? []).some((requirement) => 'bearer' in requirement);
    if (permission === 'public' ? bearer || op.security?.length !== 0 : !bearer)
      lack(`security ${JSON.stringify(op.security)} does not fit x-permission ${permission}`);
    const statuses = Object.keys(op.responses);
    if (!statuses.some((s) => /^2\d\d$/.test(s))) lack('no 2xx answer');
    // What the shared hooks answer, stated here independently of the code that documents it.
    const expected = ['400'];
    if (permission !== 'public') expected.push('401', '403');
    if (method !== 'get') expected.push('503');
    if (op.requestBody) expected.push('413', '415');
    if (path.includes('{')) expected.push('404', '414');
    for (const status of expected) if (!statuses.includes(status)) lack(`no ${status} answer`);
    for (const [status, response] of Object.entries(op.responses)) {
      if (status === '204') {
        if (response.content) lack('204 with a body');
        continue;
      }
      const media = Object.entries(response.content ?? {});
      if (!media.length) lack(`${status}: no media type`);
      for (const [type, { schema }] of media) if (!schema) lack(`${status} ${type}: no schema`);
      const json = response.content?.['application/json']?.schema as { $ref?: string } | undefined;
      if (
        /^[45]/.test(status) &&
        !(name === 'GET /readyz' && status === '503') &&
        json?.$ref !== '#/components/schemas/Error'
      )
        lack(`${status}: not the shared Error schema`);
    }
    for (const [type, { schema }] of Object.entries(op.requestBody?.content ?? {}))
      if (!schema) lack(`request ${type}: no schema`);
  }
  assert.deepEqual(problems, []);
});

test('the documented media types: YAML and CSV imports, text answers, event streams, X-Total-Count and Retry-After', () => {
  const op = (method: string, path: string) => doc.paths[path]![method]!;
  assert.ok(op('post', '/api/v1/import/site').requestBody!.content['application/yaml']);
  assert.ok(op('post', '/api/v1/import/hosts').requestBody!.content['text/csv']);
  assert.equal(op('post', '/api/v1/import/hosts').requestBody!.content['application/json'], undefined);
  assert.ok(op('get', '/api/v1/hosts/{name}/boot-script')?.responses['200']?.content?.['text/plain']);
  assert.ok(op('get', '/api/v1/hosts/{name}/kickstart')?.responses['200']?.content?.['text/plain']);
  assert.ok(op('get', '/metrics').responses['200']!.content!['text/plain']);
  assert.ok(op('get', '/api/v1/events').responses['200']!.content!['text/event-stream']);
  assert.ok(op('get', '/api/v1/jobs/{id}/events').responses['200']!.content!['text/event-stream']);
  assert.ok(op('get', '/api/v1/hosts').responses['200']!.headers!['x-total-count']);
  assert.ok(op('post', '/api/v1/login').responses['429']!.headers!['retry-after']);
  const error = doc.components.schemas.Error as {
    properties: { error: { properties: { code: { enum?: string[]; anyOf?: unknown[] } } } };
  };
  assert.ok(JSON.stringify(error).includes('KVMF_ERR_DUPLICATE_MAC'), 'the stable codes are listed');
});

test('request schemas carry the server’s patterns: names, addresses, MACs, Kickstart inputs', () => {
  const body = (method: string, path: string) =>
    JSON.stringify(doc.paths[path]![method]!.requestBody!.content['application/json']!.schema);
  const hosts = body('post', '/api/v1/hosts');
  for (const source of [
    PATTERN.hostname,
    PATTERN.mac,
    PATTERN.ipv4,
    PATTERN.uuid,
    PATTERN.networkName,
    PATTERN.profileName,
  ])
    assert.ok(hosts.includes(JSON.stringify(source).slice(1, -1)), source);
  assert.ok(body('post', '/api/v1/networks').includes(JSON.stringify(PATTERN.cidr).slice(1, -1)));
  const profiles = body('post', '/api/v1/profiles');
  assert.match(profiles, /rounds=/, 'the crypt(3) shapes');
  assert.match(profiles, /x-error-code/);
  const id = doc.paths['/api/v1/jobs/{id}']!.get!.parameters!.find((p) => p.name === 'id') as unknown as {
    schema: { pattern: string };
  };
  const ids = new RegExp(id.schema.pattern);
  for (const inRange of ['1', '9', '10', '999999999', '1999999999', '2147483647', '2147483599', '2099999999'])
    assert.ok(ids.test(inRange), inRange);
  for (const beyond of ['0', '01', '2147483648', '2147483650', '2200000000', '9999999999', '99999999999', '-1'])
    assert.ok(!ids.test(beyond), `${beyond} is beyond the 32-bit serial`);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2 ** 34 }), (n) => ids.test(String(n)) === n <= 2_147_483_647),
    { seed: 17, numRuns: 2000 },
  );
});

test('the patterns agree with the server’s parsers (generated samples)', () => {
  fc.assert(
    fc.property(fc.stringMatching(new RegExp(PATTERN.ipv4)), (text) => parseIpv4(text) !== undefined),
    { seed: 17, numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.stringMatching(new RegExp(PATTERN.mac)), (text) => normalizeMac(text) !== undefined),
    { seed: 17, numRuns: 500 },
  );
  // Host bits are the server's check (the document says so): a pattern-valid CIDR parses once they are cleared.
  fc.assert(
    fc.property(fc.stringMatching(new RegExp(PATTERN.cidr)), (text) => {
      const [ip, prefix] = text.split('/');
      const value = parseIpv4(ip!)!;
      const mask = Number(prefix) === 0 ? 0 : (0xffffffff << (32 - Number(prefix))) >>> 0;
      const network = (value & mask) >>> 0;
      return (
        parseCidr(`${network >>> 24}.${(network >>> 16) & 255}.${(network >>> 8) & 255}.${network & 255}/${prefix}`) !==
        undefined
      );
    }),
    { seed: 17, numRuns: 300 },
  );
  for (const bad of ['01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5'])
    assert.ok(!new RegExp(PATTERN.ipv4).test(bad) && parseIpv4(bad) === undefined, bad);
});
