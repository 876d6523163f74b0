/**
 * A kvmfleet worker node's BMC work (cluster/power-work.ts: site power jobs and the power poller)
 * run inside a test namespace, where the BMCs are reachable (the test process cannot enter one):
 *   node --import tsx power-worker.ts '{"databaseUrl":…,"ipmi":{…},"poller":{…}|false,"tickMs":…}'
 * The store is the test's PostgreSQL (through its unix socket); the secret key comes in
 * KVMT_SECRET_KEY (base64), never on the command line. Prints "ready", then one JSON line per poller
 * round summary on SIGUSR2; stops cleanly on SIGTERM.
 */
import { startPowerWork } from '../../src/cluster/power-work.ts';
import { keyringOf } from '../../src/bmc/secret-box.ts';
import { DEFAULT_BUILD_POLICY } from '../../src/fleet/builds.ts';
import { openStore } from '../../src/store/open.ts';
import { JobRunner } from '../../src/vms/jobs.ts';
import type { VmService } from '../../src/vms/vm-service.ts';

const args = JSON.parse(process.argv[2]!) as {
  databaseUrl: string;
  ipmi?: { timeoutMs?: number; attempts?: number; suites?: (3 | 17)[] };
  poller?: { intervalMs?: number; perSecond?: number; tickMs?: number; leaseMs?: number } | false;
  tickMs?: number;
  offPollMs?: number;
  leaseMs?: number;
};
const key = Buffer.from(process.env.KVMT_SECRET_KEY ?? '', 'base64');
if (key.length !== 32) throw new Error('KVMT_SECRET_KEY must be a base64 32-byte key');
const ring = keyringOf([key]);
const store = await openStore({ databaseUrl: args.databaseUrl });
// No bulk clones here: the job runner's VM service is never called.
const jobs = new JobRunner(store.db, {} as VmService, { work: true, pollMs: 100, leaseMs: args.leaseMs ?? 3000 });
const work = startPowerWork(
  store.db,
  jobs,
  { keyring: () => ring, ipmi: args.ipmi ?? {} },
  { ...DEFAULT_BUILD_POLICY },
  {
    poller: args.poller ?? false,
    ...(args.tickMs !== undefined ? { tickMs: args.tickMs } : {}),
    ...(args.offPollMs !== undefined ? { offPollMs: args.offPollMs } : {}),
  },
);
process.on('SIGUSR2', () =>
  console.log(JSON.stringify({ queries: work.poller?.queries ?? 0, holding: work.poller?.holding ?? false })),
);
process.once('SIGTERM', () => {
  jobs.stop();
  void work
    .stop()
    .then(() => store.close())
    .finally(() => process.exit(0));
});
console.log('ready');
