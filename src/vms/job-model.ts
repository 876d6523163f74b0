/**
 * Jobs as the API answers them and the event stream tells their progress. Types only, importing
 * nothing with a runtime: the web console type-checks against these too (console/src/types.ts).
 */
import type { JobItemResult, JobState } from '../store/schema.ts';

// One item's outcome is stored as it is answered: its one declaration is the store's row type.
export type { JobItemResult } from '../store/schema.ts';

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
