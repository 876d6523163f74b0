/**
 * Site power as a job with progress (bmc/site-power.ts on the server):
 *   kvmfleet site power-on SITE [--state ready] [--rate N/min] [--max-parallel N] [--margin N] [--no-wait]
 *   kvmfleet site power-off SITE [--state …] [--soft-timeout S] [--rate N/min] [--max-parallel N] [--no-wait]
 * Follows the job like `kvmfleet job wait` and prints one line per host that failed.
 */
import type { Command } from 'commander';
import type { Job } from '../vms/job-model.ts';
import { integer } from './serve-options.ts';
import { followJob, type CliContext } from './vm-commands.ts';

const enc = encodeURIComponent;
const STATES = ['discovered', 'ready', 'building', 'built', 'failed'];

/** "120/min", "120" (a minute) or "2/s". */
export function parseRate(value: string): number {
  const m = /^(\d{1,6})(?:\/(min|m|s))?$/.exec(value.trim());
  if (!m) throw new Error(`--rate: "${value}" is not N/min (e.g. 120/min) or N/s`);
  return m[2] === 's' ? Number(m[1]) * 60 : Number(m[1]);
}

function parseStates(value: string): string[] {
  const states = value.split(',').map((s) => s.trim());
  const unknown = states.filter((s) => !STATES.includes(s));
  if (unknown.length) throw new Error(`--state: ${unknown.join(', ')} is not one of ${STATES.join(', ')}`);
  return states;
}

/** The job's end in one line, then the hosts that failed with their codes. */
export function describePowerJob(job: Job): string {
  const ok = job.results.filter((r) => r.ok).length;
  return [
    `job ${job.id} (${job.kind}): ${job.state}, ${ok} ok, ${job.failed} failed of ${job.total}`,
    ...job.results
      .filter((r) => !r.ok)
      .map((r) => `  ${r.name} (${r.hypervisor}): ${r.code ?? 'error'} ${r.error ?? ''}`),
  ].join('\n');
}

export function registerSitePowerCommands(program: Command, ctx: CliContext): void {
  const site = program.commands.find((c) => c.name() === 'site');
  if (!site) throw new Error('registerSitePowerCommands needs the site command first');
  const run = async (action: 'on' | 'off', name: string, body: Record<string, unknown>, wait: boolean) => {
    const job = await ctx
      .client()
      .request<Job & { warning?: string }>('POST', `/api/v1/sites/${enc(name)}/power-${action}`, { json: body });
    if (job.warning && !ctx.json()) console.error(`warning: ${job.warning}`);
    if (!wait) return ctx.print(job, () => `job ${job.id} queued: power-${action} of ${job.total} hosts`);
    const done = await followJob(ctx, job.id);
    ctx.print(done, () => describePowerJob(done));
    if (done.state !== 'succeeded') process.exitCode = 1;
  };
  site
    .command('power-on <site>')
    .description(
      "power on the site's hosts with a BMC as a job, paced by admission control (free build slots plus a margin)",
    )
    .option('--state <states>', 'only hosts in these build states, comma-separated (default: ready)', parseStates)
    .option('--rate <N/min>', 'hosts powered on a minute, at most (default 60)', parseRate)
    .option('--max-parallel <n>', 'BMC calls at once (default 8)', integer)
    .option(
      '--margin <n>',
      'hosts waiting beyond the free build slots (default: a tenth of the cap, at least 1)',
      integer,
    )
    .option('--no-wait', 'print the job and return')
    .action(
      (name: string, o: { state?: string[]; rate?: number; maxParallel?: number; margin?: number; wait: boolean }) =>
        run(
          'on',
          name,
          { states: o.state, ratePerMinute: o.rate, maxParallel: o.maxParallel, margin: o.margin },
          o.wait,
        ),
    );
  site
    .command('power-off <site>')
    .description("power off the site's hosts with a BMC as a job: soft shutdown, then hard after the timeout")
    .option('--state <states>', 'only hosts in these build states, comma-separated (default: every state)', parseStates)
    .option(
      '--soft-timeout <seconds>',
      'seconds a soft shutdown is given before a hard power-off (default 120)',
      integer,
    )
    .option('--rate <N/min>', 'hosts started a minute, at most (default 60)', parseRate)
    .option('--max-parallel <n>', 'BMC calls at once (default 8)', integer)
    .option('--no-wait', 'print the job and return')
    .action(
      (
        name: string,
        o: { state?: string[]; softTimeout?: number; rate?: number; maxParallel?: number; wait: boolean },
      ) =>
        run(
          'off',
          name,
          { states: o.state, softTimeoutS: o.softTimeout, ratePerMinute: o.rate, maxParallel: o.maxParallel },
          o.wait,
        ),
    );
}
