/**
 * A caching proxy for upstream install mirrors: /mirror/NAME/path is fetched from the upstream
 * once, kept under the cache directory, and served from disk from then on. In an install storm
 * 500 machines ask for the same files at once; one download per file goes upstream (single flight).
 * Install trees are immutable per release, so cached files are kept until an operator clears them.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { safeRelativePath } from '../protocols/safe-path.ts';

export type MirrorResult =
  | { readonly ok: true; readonly root: string; readonly path: string }
  | { readonly ok: false; readonly status: 400 | 404 | 502; readonly detail: string };

export interface MirrorStats {
  hits: number;
  misses: number;
  upstreamFetches: number;
  upstreamErrors: number;
}

/** Parses "centos=http://mirror/centos,rhel9=http://…" into name → base URL. */
export function parseMirrors(text: string | undefined): Map<string, string> {
  const mirrors = new Map<string, string>();
  for (const item of (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    const name = item.slice(0, eq);
    const url = item.slice(eq + 1);
    if (eq <= 0 || !/^[a-z0-9][a-z0-9._-]*$/.test(name) || !/^https?:\/\//.test(url))
      throw new Error(`--mirror wants name=http://upstream/path, not "${item}"`);
    mirrors.set(name, url.replace(/\/+$/, ''));
  }
  return mirrors;
}

export class MirrorCache {
  readonly stats: MirrorStats = { hits: 0, misses: 0, upstreamFetches: 0, upstreamErrors: 0 };
  readonly #inFlight = new Map<string, Promise<MirrorResult>>();

  constructor(
    private readonly cacheDir: string,
    private readonly upstreams: ReadonlyMap<string, string>,
  ) {}

  get names(): string[] {
    return [...this.upstreams.keys()];
  }

  async resolve(name: string, requested: string): Promise<MirrorResult> {
    const upstream = this.upstreams.get(name);
    if (!upstream) return { ok: false, status: 404, detail: `no mirror named ${name}` };
    const safe = safeRelativePath(requested);
    if (!safe.ok) return { ok: false, status: 400, detail: safe.detail };
    const root = join(this.cacheDir, name);
    const file = join(root, safe.path);
    if (await isFile(file)) {
      this.stats.hits += 1;
      return { ok: true, root, path: safe.path };
    }
    this.stats.misses += 1;
    const key = `${name}/${safe.path}`;
    let flight = this.#inFlight.get(key);
    if (!flight) {
      flight = this.#download(`${upstream}/${safe.path.split('/').map(encodeURIComponent).join('/')}`, file).then(
        (): MirrorResult => ({ ok: true, root, path: safe.path }),
        (error: Error & { status?: 404 | 502 }): MirrorResult => ({
          ok: false,
          status: error.status ?? 502,
          detail: error.message,
        }),
      );
      this.#inFlight.set(key, flight);
      void flight.finally(() => this.#inFlight.delete(key));
    }
    return flight;
  }

  async #download(url: string, file: string): Promise<void> {
    this.stats.upstreamFetches += 1;
    let response: Response;
    try {
      response = await fetch(url, { redirect: 'follow' });
    } catch (error) {
      this.stats.upstreamErrors += 1;
      throw Object.assign(new Error(`upstream unreachable: ${(error as Error).message}`), { status: 502 as const });
    }
    if (!response.ok || !response.body) {
      this.stats.upstreamErrors += 1;
      throw Object.assign(new Error(`upstream answered ${response.status}`), {
        status: response.status === 404 ? (404 as const) : (502 as const),
      });
    }
    await mkdir(dirname(file), { recursive: true });
    // Written beside its final name and renamed: a half-downloaded file is never served.
    const partial = `${file}.partial-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(
        Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
        createWriteStream(partial),
      );
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      this.stats.upstreamErrors += 1;
      throw Object.assign(new Error(`download failed: ${(error as Error).message}`), { status: 502 as const });
    }
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
