/**
 * What an install-tree GET or HEAD is answered with, from the request's headers and the file's size
 * and mtime (pure; trees.ts does the I/O). Validators as @fastify/send made them before (a weak
 * `W/"size-mtime"` ETag, Last-Modified), and RFC 9110:
 * - preconditions (§13.2.2): If-Match, then If-Unmodified-Since → 412; If-None-Match, or without
 *   it If-Modified-Since → 304 (a request with `Cache-Control: no-cache` always gets the file);
 * - ranges (§14, src/protocols/http-range.ts): one satisfiable range → 206 with Content-Range, a
 *   suffix longer than the file is all of it; an unsatisfiable one → 416 `Content-Range:
 *   bytes *\/size`; several ranges, a syntax error or an invalid range are ignored → 200 whole;
 *   with If-Range, the range is used only if the validator still matches (else 200 whole).
 */
import { resolveRange } from '../protocols/http-range.ts';

export interface TreeFileInfo {
  readonly size: number;
  readonly mtimeMs: number;
}

export interface TreeRequestHeaders {
  readonly range?: string | undefined;
  readonly 'if-range'?: string | undefined;
  readonly 'if-match'?: string | undefined;
  readonly 'if-none-match'?: string | undefined;
  readonly 'if-modified-since'?: string | undefined;
  readonly 'if-unmodified-since'?: string | undefined;
  readonly 'cache-control'?: string | undefined;
}

export type TreeAnswer =
  /** 200 or 206: `length` bytes from `start` (Content-Range set for 206). */
  | {
      readonly status: 200 | 206;
      readonly start: number;
      readonly length: number;
      readonly headers: Record<string, string>;
    }
  /** 304, 412 or 416: headers only (416 with a short text body). */
  | { readonly status: 304 | 412 | 416; readonly headers: Record<string, string> };

export function treeEtag(file: TreeFileInfo): string {
  return `W/"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
}

export function treeAnswer(request: TreeRequestHeaders, file: TreeFileInfo): TreeAnswer {
  const etag = treeEtag(file);
  const modified = new Date(Math.floor(file.mtimeMs)).toUTCString();
  const validators = { etag, 'last-modified': modified };
  const modifiedMs = Date.parse(modified); // whole seconds, as the client saw it

  const ifMatch = request['if-match'];
  if (ifMatch && ifMatch.trim() !== '*' && !tokens(ifMatch).some((t) => t === etag || `W/${t}` === etag))
    return { status: 412, headers: {} };
  const ifUnmodified = request['if-unmodified-since'];
  if (ifUnmodified !== undefined) {
    const since = Date.parse(ifUnmodified);
    if (!Number.isNaN(since) && modifiedMs > since) return { status: 412, headers: {} };
  }
  if (!request['cache-control']?.includes('no-cache')) {
    const ifNoneMatch = request['if-none-match'];
    if (ifNoneMatch !== undefined) {
      if (ifNoneMatch.trim() === '*' || tokens(ifNoneMatch).some((t) => t === etag || `W/${t}` === etag))
        return { status: 304, headers: validators };
    } else {
      const ifModified = request['if-modified-since'];
      if (ifModified !== undefined && modifiedMs <= Date.parse(ifModified)) return { status: 304, headers: validators };
    }
  }

  const headers = { ...validators, 'accept-ranges': 'bytes' };
  const whole = { status: 200, start: 0, length: file.size, headers } as const;
  if (request.range === undefined || !rangeFresh(request['if-range'], etag, modifiedMs)) return whole;
  const range = resolveRange(request.range, file.size);
  if (range.kind === 'ignore') return whole;
  if (range.kind === 'unsatisfiable')
    return { status: 416, headers: { 'accept-ranges': 'bytes', 'content-range': `bytes */${file.size}` } };
  return {
    status: 206,
    start: range.start,
    length: range.end - range.start + 1,
    headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${file.size}` },
  };
}

/** If-Range (§13.1.5): absent, or naming this ETag, or a date not older than the file. */
function rangeFresh(ifRange: string | undefined, etag: string, modifiedMs: number): boolean {
  if (ifRange === undefined) return true;
  if (ifRange.includes('"')) return ifRange.trim() === etag;
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && modifiedMs <= date;
}

/** The entity tags of an If-Match / If-None-Match list. */
function tokens(list: string): string[] {
  return list
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}
