/** The API on loopback with an in-memory embedded store, for tests that talk to it over real HTTP. */
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.ts';
import { KickstartTemplates } from '../../src/boot/kickstart.ts';
import { BootService } from '../../src/boot/service.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { EventHub } from '../../src/api/events.ts';
import { LibvirtPool } from '../../src/protocols/libvirt/pool.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import { VmService } from '../../src/vms/vm-service.ts';

export interface TestApi {
  readonly store: Store;
  readonly app: FastifyInstance;
  readonly port: number;
  close(): Promise<void>;
}

/** `all`: also the VM, template, job and live-event routes (libvirt reached only for hypervisors a test registers). */
export async function startTestApi(options: { all?: boolean } = {}): Promise<TestApi> {
  const store = await openStore({ dataDir: 'memory://' });
  const pool = options.all ? new LibvirtPool() : undefined;
  const vms = pool ? new VmService(store.db, pool) : undefined;
  const jobs = vms ? new JobRunner(store.db, vms, { work: false }) : undefined;
  const events = jobs ? new EventHub(store.db, { jobs, vms }) : undefined;
  const app = await buildApi({
    store,
    boot: new BootService({ db: store.db, templates: new KickstartTemplates() }),
    bootBaseUrl: 'http://boot.test:8081',
    ...(pool && vms && jobs ? { vms: { db: store.db, pool, vms, jobs } } : {}),
    ...(events ? { events } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    store,
    app,
    port: (app.server.address() as { port: number }).port,
    async close() {
      events?.stop();
      jobs?.stop();
      await app.close();
      await pool?.close();
      await store.close();
    },
  };
}
