/**
 * Site power on the API: POST /api/v1/sites/{name}/power-on|power-off answers 202 with the job
 * (bmc/site-power.ts; progress and per-host results through the jobs routes and the live event
 * stream). Audited with what was asked (hosts, rate, limits).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { recordAudit } from '../../auth/audit.ts';
import { SITE_POWER_LIMITS, startSitePower, type SitePowerAction } from '../../bmc/site-power.ts';
import { listNodes } from '../../cluster/nodes.ts';
import { BUILD_STATES, type BuildState, type Database } from '../../store/schema.ts';
import type { Job } from '../../vms/job-model.ts';
import type { JobRunner } from '../../vms/jobs.ts';
import { errorReplies, NameParams } from '../schemas.ts';
import { QueuedJob } from './vms.ts';

const L = SITE_POWER_LIMITS;
const int = (range: { min: number; max: number }, description: string) =>
  Type.Optional(Type.Integer({ minimum: range.min, maximum: range.max, description }));
const States = (description: string) =>
  Type.Optional(
    Type.Array(Type.Union(BUILD_STATES.map((s) => Type.Literal(s))), { minItems: 1, maxItems: 5, description }),
  );
const common = {
  ratePerMinute: int(L.ratePerMinute, `hosts started a minute, at most (default ${L.ratePerMinute.default})`),
  maxParallel: int(L.maxParallel, `BMC calls at once, at most (default ${L.maxParallel.default})`),
};
const PowerOnBody = Type.Object(
  {
    states: States('only hosts in these build states (default: ready)'),
    ...common,
    margin: int(L.margin, 'hosts waiting beyond the free build slots (default: a tenth of the cap, at least 1)'),
    bootGraceS: int(
      L.bootGraceS,
      `seconds a powered-on host may take to ask to build before it stops holding a place (default ${L.bootGraceS.default})`,
    ),
  },
  { additionalProperties: false },
);
const PowerOffBody = Type.Object(
  {
    states: States('only hosts in these build states (default: every state)'),
    ...common,
    softTimeoutS: int(
      L.softTimeoutS,
      `seconds a soft shutdown is given before a hard power-off (default ${L.softTimeoutS.default})`,
    ),
  },
  { additionalProperties: false },
);

export function registerSitePowerRoutes(app: FastifyInstance, db: Kysely<Database>, jobs: JobRunner): void {
  const route = (action: SitePowerAction, body: typeof PowerOnBody | typeof PowerOffBody, summary: string) =>
    app.post(
      `/api/v1/sites/:name/power-${action}`,
      {
        config: { permission: 'write' },
        schema: {
          tags: ['sites'],
          summary,
          params: NameParams,
          body,
          response: { 202: QueuedJob, ...errorReplies(404, 409, 422) },
        },
      },
      async (request: FastifyRequest, reply) => {
        const site = (request.params as { name: string }).name;
        const input = (request.body ?? {}) as Static<typeof PowerOnBody> & Static<typeof PowerOffBody>;
        const actor = request.principal?.user ?? 'anonymous';
        const audit = (result: string, detail: Record<string, unknown>) =>
          recordAudit(db, { actor, action: `site power-${action}`, target: site, result, detail });
        let job: Job;
        try {
          job = await startSitePower(
            db,
            jobs,
            { site, action, ...input, ...(input.states ? { states: input.states as BuildState[] } : {}) },
            actor,
          );
        } catch (error) {
          await audit('failed', { code: (error as { code?: string }).code ?? 'internal' });
          throw error;
        }
        await audit('queued', { job: job.id, hosts: job.total, ...input });
        reply.code(202);
        const workers = await listNodes(db, { role: 'worker', aliveOnly: true });
        return workers.length
          ? job
          : {
              ...job,
              warning: 'no worker node is alive: the job waits queued until one starts (kvmfleet serve --roles worker)',
            };
      },
    );
  route(
    'on',
    PowerOnBody,
    "Power on the site's hosts with a BMC as a job, paced by admission control (free build slots plus a margin), a rate and BMC calls in parallel: 202 and the job",
  );
  route(
    'off',
    PowerOffBody,
    "Power off the site's hosts with a BMC as a job: soft shutdown, then hard after the timeout: 202 and the job",
  );
}
