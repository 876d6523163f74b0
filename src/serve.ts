/** `kvmfleet serve`: open the store, start the roles, stop cleanly on SIGINT/SIGTERM. */
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/app.ts';
import type { Role } from './cluster/roles.ts';
import { openStore, type Store } from './store/open.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly roles: readonly Role[];
  readonly logLevel: string;
}

export interface Running {
  readonly store: Store;
  readonly api: FastifyInstance | undefined;
  readonly url: string;
  stop(): Promise<void>;
}

export async function serve(options: ServeOptions): Promise<Running> {
  const store = await openStore({ databaseUrl: options.databaseUrl, dataDir: options.dataDir });
  let api: FastifyInstance | undefined;
  try {
    if (options.roles.includes('api')) {
      api = await buildApi({ store, logger: { level: options.logLevel } });
      await api.listen({ host: options.host, port: options.port });
    }
  } catch (error) {
    await api?.close().catch(() => {});
    await store.close();
    throw error;
  }
  const address = api?.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    store,
    api,
    url,
    stop() {
      stopping ??= (async () => {
        await api?.close();
        await store.close();
      })();
      return stopping;
    },
  };
}
