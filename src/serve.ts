/** `kvmfleet serve`: open the store, start the roles asked for, stop them cleanly on SIGINT/SIGTERM. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/app.ts';
import type { Role } from './cluster/roles.ts';
import { DEBIAN_IPXE_FILES, FileStore } from './protocols/tftp/files.ts';
import { TftpServer } from './protocols/tftp/server.ts';
import { openStore, type Store } from './store/open.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly api: { host: string; port: number };
  readonly tftp: { host: string; port: number; root?: string | undefined; timeoutMs?: number | undefined };
  readonly roles: readonly Role[];
  readonly logLevel: string;
}

export interface Running {
  readonly store: Store;
  readonly api: FastifyInstance | undefined;
  readonly tftp: TftpServer | undefined;
  /** What each role listens on, e.g. { api: "http://127.0.0.1:8080", tftp: "udp://0.0.0.0:69" }. */
  readonly endpoints: Partial<Record<Role, string>>;
  stop(): Promise<void>;
}

export async function serve(options: ServeOptions): Promise<Running> {
  const store = await openStore({ databaseUrl: options.databaseUrl, dataDir: options.dataDir });
  let api: FastifyInstance | undefined;
  let tftp: TftpServer | undefined;
  const endpoints: Partial<Record<Role, string>> = {};
  const stopAll = async () => {
    await tftp?.close();
    await api?.close();
    await store.close();
  };
  try {
    if (options.roles.includes('tftp')) {
      const root = options.tftp.root ?? join(options.dataDir === 'memory://' ? '.' : options.dataDir, 'tftp');
      mkdirSync(root, { recursive: true });
      tftp = new TftpServer({
        files: new FileStore({ root, builtins: DEBIAN_IPXE_FILES }),
        host: options.tftp.host,
        port: options.tftp.port,
        ...(options.tftp.timeoutMs ? { limits: { defaultTimeoutMs: options.tftp.timeoutMs } } : {}),
      });
      const bound = await tftp.listen().catch((error: NodeJS.ErrnoException) => {
        throw new Error(`tftp cannot listen on ${options.tftp.host}:${options.tftp.port} (${error.code ?? error.message})${error.code === 'EACCES' ? ': port 69 needs root or CAP_NET_BIND_SERVICE' : ''}`);
      });
      endpoints.tftp = `udp://${bound.address}:${bound.port}`;
    }
    if (options.roles.includes('api')) {
      api = await buildApi({ store, logger: { level: options.logLevel } });
      await api.listen({ host: options.api.host, port: options.api.port });
      const address = api.server.address();
      const port = typeof address === 'object' && address ? address.port : options.api.port;
      endpoints.api = `http://${options.api.host.includes(':') ? `[${options.api.host}]` : options.api.host}:${port}`;
    }
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    store,
    api,
    tftp,
    endpoints,
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
