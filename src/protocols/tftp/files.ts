/**
 * What the TFTP server may send: files under one served root, plus a few named built-in files
 * (Debian's iPXE binaries). A requested name never leads outside the root: "..", absolute paths,
 * NUL or control bytes and symlinks that resolve outside the root are refused as access violations.
 * Files are read once and served from memory (shared memory, for the transfer workers) until their
 * size, mtime or inode changes.
 */
import { realpathSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { safeRelativePath, type SafePath } from '../safe-path.ts';

export type Lookup =
  | { readonly ok: true; readonly data: Buffer }
  | { readonly ok: false; readonly reason: 'not-found' | 'access-violation'; readonly detail: string };

interface Cached {
  readonly data: Buffer;
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

/** Debian's ipxe package; /usr/lib/ipxe/ipxe.efi is a symlink into /boot, so these are resolved at start. */
export const DEBIAN_IPXE_FILES: Readonly<Record<string, string>> = {
  'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
  'undionly.kkpxe': '/usr/lib/ipxe/undionly.kkpxe',
  'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
  'snponly.efi': '/usr/lib/ipxe/snponly.efi',
  'ipxe.pxe': '/usr/lib/ipxe/ipxe.pxe',
};

export interface FileStoreOptions {
  /** The operator's served root; may be absent (only built-ins are served). */
  readonly root?: string | undefined;
  /** Names served from fixed paths when the root has no file of that name. */
  readonly builtins?: Readonly<Record<string, string>>;
  /** Cache at most this many bytes; least recently used files go first. */
  readonly cacheBytes?: number;
}

/**
 * A copy in shared memory, which the transfer workers read without a copy of their own
 * (transfer-pool.ts).
 */
export function inSharedMemory(data: Buffer): Buffer {
  const shared = Buffer.from(new SharedArrayBuffer(data.length));
  data.copy(shared);
  return shared;
}

export class FileStore {
  readonly #root: string | undefined;
  readonly #builtins: Map<string, string>;
  readonly #cache = new Map<string, Cached>();
  readonly #loading = new Map<string, Promise<Cached>>();
  readonly #cacheLimit: number;
  #cachedBytes = 0;

  constructor(options: FileStoreOptions) {
    this.#root = options.root ? realpathSync(options.root) : undefined;
    this.#builtins = new Map();
    for (const [name, path] of Object.entries(options.builtins ?? {})) {
      try {
        this.#builtins.set(name, realpathSync(path));
      } catch {
        /* not installed: not served */
      }
    }
    this.#cacheLimit = options.cacheBytes ?? 512 * 1024 * 1024;
  }

  /**
   * The name as a safe relative path, or why it is refused. Leading slashes name the served root,
   * as with tftpd-hpa -s (firmware asks for "/undionly.kpxe"): they are dropped before the checks.
   */
  static sanitize(name: string): SafePath {
    return safeRelativePath(name.replace(/^[/\\]+/, ''));
  }

  /** Bytes of file contents held in memory. */
  get cachedBytes(): number {
    return this.#cachedBytes;
  }

  async lookup(name: string): Promise<Lookup> {
    const safe = FileStore.sanitize(name);
    if (!safe.ok) return { ok: false, reason: 'access-violation', detail: safe.detail };
    if (this.#root) {
      const candidate = join(this.#root, safe.path);
      let real: string | undefined;
      try {
        real = await realpath(candidate);
      } catch {
        real = undefined;
      }
      if (real !== undefined) {
        if (real !== this.#root && !real.startsWith(this.#root + sep))
          return { ok: false, reason: 'access-violation', detail: 'symlink leaves the served root' };
        return this.#read(real);
      }
    }
    const builtin = this.#builtins.get(safe.path);
    if (builtin) return this.#read(builtin);
    return { ok: false, reason: 'not-found', detail: `${safe.path} not found` };
  }

  async #read(path: string): Promise<Lookup> {
    let info;
    try {
      info = await stat(path);
    } catch {
      return { ok: false, reason: 'not-found', detail: 'not found' };
    }
    if (!info.isFile()) return { ok: false, reason: 'not-found', detail: 'not a regular file' };
    const cached = this.#cache.get(path);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size && cached.ino === info.ino) {
      this.#cache.delete(path); // re-insert: Map order is our LRU order
      this.#cache.set(path, cached);
      return { ok: true, data: cached.data };
    }
    let loading = this.#loading.get(path);
    if (!loading) {
      loading = readFile(path).then((data) => ({
        data: inSharedMemory(data),
        mtimeMs: info.mtimeMs,
        size: data.length,
        ino: info.ino,
      }));
      this.#loading.set(path, loading);
      loading.finally(() => this.#loading.delete(path)).catch(() => {});
    }
    try {
      const entry = await loading;
      this.#store(path, entry);
      return { ok: true, data: entry.data };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { ok: false, reason: code === 'EACCES' ? 'access-violation' : 'not-found', detail: code ?? 'unreadable' };
    }
  }

  #store(path: string, entry: Cached): void {
    const old = this.#cache.get(path);
    if (old) {
      this.#cachedBytes -= old.size;
      this.#cache.delete(path);
    }
    if (entry.size > this.#cacheLimit) return;
    this.#cache.set(path, entry);
    this.#cachedBytes += entry.size;
    for (const [key, value] of this.#cache) {
      if (this.#cachedBytes <= this.#cacheLimit) break;
      this.#cache.delete(key);
      this.#cachedBytes -= value.size;
    }
  }
}
