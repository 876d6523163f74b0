/** The API on loopback with an in-memory embedded store, for tests that talk to it over real HTTP. */
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { openStore, type Store } from '../../src/store/open.ts';

export interface TestApi {
  readonly store: Store;
  readonly app: FastifyInstance;
  readonly port: number;
  close(): Promise<void>;
}

export async function startTestApi(): Promise<TestApi> {
  const store = await openStore({ dataDir: 'memory://' });
  const app = await buildApi({ store, boot: new BootService({ db: store.db, templates: new KickstartTemplates() }), bootBaseUrl: 'http://boot.test:8081' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    store,
    app,
    port: (app.server.address() as { port: number }).port,
    async close() {
      await app.close();
      await store.close();
    },
  };
}
