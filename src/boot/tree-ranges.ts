/**
 * RFC 9110 ranges for the install trees, in front of @fastify/static (whose `send` answers a
 * suffix longer than the file with 416, serves `bytes=0-0-0` as 206, and whose 416 loses its
 * Content-Range in our error handler). An onRequest hook resolves the Range header against the
 * file's size (src/protocols/http-range.ts): a range to ignore is removed (→ 200), a satisfiable
 * one rewritten in canonical form for `send` (→ 206), an unsatisfiable one answered here (416,
 * `Content-Range: bytes *\/size`). Requests with If-Range are left to `send`, which knows validators.
 */
import { stat } from 'node:fs/promises';
import { normalize, resolve, sep } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { resolveRange } from '../protocols/http-range.ts';

export function treeRangeHook(
  root: string,
  prefix: string,
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const base = resolve(root);
  return async (request, reply) => {
    const header = request.headers.range;
    if (
      header === undefined ||
      (request.method !== 'GET' && request.method !== 'HEAD') ||
      !request.url.startsWith(prefix)
    )
      return;
    const path = filePath(base, request.url.slice(prefix.length));
    const info = path ? await stat(path).catch(() => undefined) : undefined;
    if (!info?.isFile()) return; // send answers: 404, 403, a directory redirect
    const answer = resolveRange(header, info.size);
    if (answer.kind === 'ignore') {
      delete request.headers.range;
      return;
    }
    if (request.headers['if-range'] !== undefined) return;
    if (answer.kind === 'range') {
      request.headers.range = `bytes=${answer.start}-${answer.end}`;
      return;
    }
    await reply
      .code(416)
      .header('content-range', `bytes */${info.size}`)
      .header('accept-ranges', 'bytes')
      .type('text/plain')
      .send('range not satisfiable\n');
  };
}

/** The file a tree URL names, or undefined if it would leave the root (send refuses those itself). */
function filePath(base: string, rest: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest.split('?')[0]!);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const full = resolve(base, normalize(decoded).replace(/^([/\\])+/, ''));
  return full === base || full.startsWith(base + sep) ? full : undefined;
}
