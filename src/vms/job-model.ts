/**
 * Jobs as the API answers them and the event stream tells their progress. Types only, importing
 * nothing with a runtime: the web console type-checks against these too (console/src/types.ts).
 */
import type { JobState } from '../store/schema.ts';

export interface JobItemResult {
  readonly name: string;
  readonly hypervisor: string;
  readonly ok: boolean;
  readonly error?: string;
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
