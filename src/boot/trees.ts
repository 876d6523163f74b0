/**
 * The install trees under /trees/: kernels, initrds and repositories, read by installers and by a
 * storm of booting machines. Node has no sendfile, so each byte is read from the page cache and
 * written to the socket: the cost is per chunk (a thread-pool read, a write, an event-loop turn),
 * and chunks are as large as a shared budget allows: a few clients get two 1 MiB buffers each (one
 * read while the other is written), more get smaller ones within BUDGET, and past 128 responses,
 * as in a storm, each has one buffer of 64 KiB down to 16 KiB, about BUDGET in all (@fastify/static
 * moved 64 KiB chunks through a stream pipe per response and reached ~0.2× nginx here). Each
 * response reads into its own buffers and reuses one only once the socket has taken its bytes.
 *
 * Refused: paths with NUL or undecodable escapes (400), any part that is `..` or starts with a
 * dot — dotfiles, `%2e%2e`, `..%2f` once decoded (403), and files a symlink leads to outside the
 * root (403). Directories, like missing files, are 404 (no index, no listing). Headers, ranges and
 * conditional requests: tree-ranges.ts.
 */
import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { isUtf8MimeType, mime } from '@fastify/send';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { treeAnswer } from './tree-ranges.ts';

const MIN_CHUNK = 64 * 1024;
const MAX_CHUNK = 1024 * 1024;
/** The smallest buffer, for a storm of thousands (64 KiB at 256 responses, 32 KiB at 512, 16 KiB from 1 024). */
const FLOOR_CHUNK = 16 * 1024;
/** Bytes of read buffers the tree responses in progress share while each can have two. */
const BUDGET = 16 * 1024 * 1024;

export interface TreesOptions {
  /** The directory served. */
  readonly root: string;
  /** URL prefix, with its slashes: `/trees/`. */
  readonly prefix: string;
  /** Bytes of read buffers shared while responses can have two (tests); default 16 MiB. */
  readonly readBudget?: number;
}

/** The tree file a URL path (after the prefix, still percent-encoded) names, or the status refusing it. */
export function treePath(rest: string): { ok: true; path: string } | { ok: false; status: 400 | 403 | 404 } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return { ok: false, status: 400 };
  }
  if (decoded.includes('\0')) return { ok: false, status: 400 };
  const parts = decoded.split('/').filter((part) => part !== '');
  if (parts.some((part) => part.startsWith('.'))) return { ok: false, status: 403 };
  if (parts.length === 0 || decoded.endsWith('/')) return { ok: false, status: 404 };
  return { ok: true, path: parts.join('/') };
}

/**
 * The read buffers of a new response while `active` others stream: two (the next chunk is read
 * while the socket takes the last) of the largest power of two in [MIN_CHUNK, MAX_CHUNK] that keeps
 * everyone within `budget`; past that, as in a storm, one buffer, its share of the budget rounded
 * down to a power of two in [FLOOR_CHUNK, MIN_CHUNK].
 */
export function chunking(active: number, budget = BUDGET): { readonly size: number; readonly buffers: 1 | 2 } {
  const share = budget / (active + 1);
  for (let size = MAX_CHUNK; size >= MIN_CHUNK; size /= 2) if (2 * size <= share) return { size, buffers: 2 };
  let size = MIN_CHUNK;
  while (size > FLOOR_CHUNK && size > share) size /= 2;
  return { size, buffers: 1 };
}

export async function registerTrees(app: FastifyInstance, options: TreesOptions): Promise<void> {
  let active = 0;

  const refuse = (reply: FastifyReply, status: 400 | 403 | 404) =>
    reply
      .code(status)
      .type('text/plain')
      .send(status === 404 ? 'not found\n' : status === 403 ? 'forbidden\n' : 'bad request\n');

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const url = request.url;
    const query = url.indexOf('?');
    const named = treePath(url.slice(options.prefix.length, query === -1 ? undefined : query));
    if (!named.ok) return refuse(reply, named.status);
    // The root too is resolved per request: it may not exist yet, or be a symlink a new release moves.
    let root: string;
    let real: string;
    try {
      root = await realpath(options.root);
      real = await realpath(join(root, named.path));
    } catch {
      return refuse(reply, 404);
    }
    if (!real.startsWith(root + sep)) return refuse(reply, 403); // a symlink out of the tree
    let file: FileHandle;
    try {
      file = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return refuse(reply, 404);
    }
    let handedOff = false;
    try {
      const info = await file.stat();
      if (!info.isFile()) return refuse(reply, 404);
      const answer = treeAnswer(request.headers, info);
      reply.code(answer.status).headers(answer.headers);
      if (!('length' in answer))
        return answer.status === 416 ? reply.type('text/plain').send('range not satisfiable\n') : reply.send();
      let type = mime.getType(real) ?? 'application/octet-stream';
      if (isUtf8MimeType(type)) type += '; charset=utf-8';
      reply.header('content-type', type).header('content-length', answer.length);
      if (request.method === 'HEAD' || answer.length === 0) return reply.send();
      // From here the response is ours to write (Fastify's onResponse hooks still run at 'finish').
      reply.hijack();
      handedOff = true;
      void stream(file, answer.start, answer.length, reply);
    } finally {
      if (!handedOff) await file.close();
    }
  };

  /** Writes the headers and `length` bytes from `start`; on any error the connection is cut. */
  async function stream(file: FileHandle, start: number, length: number, reply: FastifyReply): Promise<void> {
    const res = reply.raw;
    const plan = chunking(active, options.readBudget);
    active++;
    try {
      const size = Math.min(plan.size, length);
      const buffers = Array.from({ length: length > size ? plan.buffers : 1 }, () => Buffer.allocUnsafeSlow(size));
      // A write to a socket that is destroyed meanwhile may never call back: 'close' ends the wait.
      const closed = new Promise<never>((_resolve, reject) =>
        res.once('close', () => reject(new Error('connection closed'))),
      );
      closed.catch(() => undefined);
      const write = (chunk: Buffer) => {
        const done = Promise.race([
          new Promise<void>((resolve, reject) => res.write(chunk, (error) => (error ? reject(error) : resolve()))),
          closed,
        ]);
        done.catch(() => undefined); // awaited later; a rejection meanwhile is not unhandled
        return done;
      };
      res.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number>);
      let position = start;
      let left = length;
      // A buffer is read into again only once the socket has taken what was last written from it.
      const written: (Promise<void> | undefined)[] = buffers.map(() => undefined);
      for (let i = 0; left > 0; i = (i + 1) % buffers.length) {
        const buffer = buffers[i]!;
        await written[i];
        if (res.destroyed) throw new Error('client went away');
        const { bytesRead } = await file.read(buffer, 0, Math.min(size, left), position);
        if (bytesRead === 0) throw new Error('tree file shrank while being sent');
        position += bytesRead;
        left -= bytesRead;
        written[i] = write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      }
      await Promise.all(written);
      res.end();
    } catch (error) {
      if (!res.destroyed) reply.log.debug({ err: error }, 'tree file not sent whole');
      res.destroy();
    } finally {
      active--;
      await file.close().catch(() => undefined);
    }
  }

  app.route({ method: ['GET', 'HEAD'], url: `${options.prefix}*`, handler });
}
