/**
 * Jobs as the API answers them and the event stream tells their progress. Types only, importing
 * nothing with a runtime: the web console type-checks against these too (console/src/types.ts).
 */
import type { JobState } from '../store/schema.ts';

export interface JobItemResult {
  /** The VM of a bulk clone; the host of a site power job. */
  readonly name: string;
  /** Where the item ran: the clone's hypervisor; for a site power job, the host's BMC address. */
  readonly hypervisor: string;
  readonly ok: boolean;
  readonly error?: string;
  /** The error's stable code (KVMF_ERR_…), when it has one. */
  readonly code?: string;
  /** What happened, when there is more to say than ok (a site power-off: "soft", "hard after 120 s", "was off"). */
  readonly detail?: string;
  readonly ms: number;
}

export interface Job {
  readonly id: number;
  readonly kind: string;
  readonly state: JobState;
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly results: JobItemResult[];
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export type JobEvent = {
  readonly job: number;
  readonly state: JobState;
  readonly done: number;
  readonly failed: number;
  readonly total: number;
  readonly item?: JobItemResult;
};
