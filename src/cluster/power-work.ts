/**
 * The BMC work of a node, wired to what sits beside it: site power jobs (bmc/site-power.ts) run by
 * this node's job runner and paced by the site's admission state (fleet/builds.ts); the power
 * poller (bmc/power-poller.ts), which polls on one node of the cluster at a time (its lease); and
 * the kvmfleet_host_power gauge an API node serves.
 */
import type { Kysely } from 'kysely';
import { siteBuilds, type BuildPolicy } from '../fleet/builds.ts';
import type { BmcDeps } from '../bmc/power.ts';
import { PowerGauge, PowerPoller, type PowerPollerOptions } from '../bmc/power-poller.ts';
import { registerSitePowerJobs, type SiteAdmission } from '../bmc/site-power.ts';
import type { Metrics } from '../metrics.ts';
import { startPeriodic, type Periodic } from '../store/periodic.ts';
import type { Database } from '../store/schema.ts';
import type { JobRunner } from '../vms/jobs.ts';

/** The site's cap, builds and fresh queue, as site power-on paces by. */
export function siteAdmission(db: Kysely<Database>, policy: BuildPolicy): SiteAdmission {
  return async (site) => {
    const builds = await siteBuilds(db, site, policy);
    return { cap: builds.cap, building: builds.building.length, queued: builds.queued.map((q) => q.hostname) };
  };
}

export interface PowerWorkOptions {
  /** The poller's bounds (false: no poller on this node). */
  readonly poller?: PowerPollerOptions | false;
  /** How often a site power-on looks at the site again while it holds off. */
  readonly tickMs?: number;
  readonly offPollMs?: number;
}

/** A worker node: runs site power jobs and (if it wins the lease) polls power state. */
export function startPowerWork(
  db: Kysely<Database>,
  jobs: JobRunner,
  bmc: BmcDeps,
  policy: BuildPolicy,
  options: PowerWorkOptions = {},
): { poller: PowerPoller | undefined; stop(): Promise<void> } {
  registerSitePowerJobs(jobs, {
    db,
    bmc,
    admission: siteAdmission(db, policy),
    ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
    ...(options.offPollMs !== undefined ? { offPollMs: options.offPollMs } : {}),
  });
  const poller = options.poller === false ? undefined : new PowerPoller(db, bmc, options.poller ?? {});
  poller?.start();
  return { poller, stop: async () => poller?.stop() };
}

/** An API node: kvmfleet_host_power{state} in /metrics, counted from the store every `intervalMs`. */
export function startPowerGauge(
  db: Kysely<Database>,
  metrics: Metrics,
  onError: (error: unknown) => void,
  intervalMs = 15_000,
): Periodic {
  const gauge = new PowerGauge(db);
  metrics.add(() => gauge.samples());
  return startPeriodic(intervalMs, () => gauge.refresh(), onError, 0);
}
