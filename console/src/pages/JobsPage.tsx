/** Jobs (bulk clones): progress bars that move with the live event stream, and each item's result. */
import { useEffect, useState } from 'react';
import { api } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { href } from '../router.ts';
import type { Job, LiveEvent } from '../types.ts';
import { ErrorNote, ProgressBar, Section, StateBadge, Time, useLoad, useThrottled } from '../ui.tsx';

type JobProgress = Extract<LiveEvent, { type: 'job' }>;

export function JobsPage({ query }: { query: URLSearchParams }) {
  const jobs = useLoad(() => api<Job[]>('GET', '/api/v1/jobs'), []);
  const [progress, setProgress] = useState<Record<number, JobProgress>>({});
  const reload = useThrottled(jobs.reload, 1000);
  const selected = Number(query.get('job') ?? 0);
  useLiveEvents((event) => {
    if (event.type !== 'job') return;
    setProgress((p) => ({ ...p, [event.job]: event }));
    // A job this page has not seen yet, or one that finished: read it again for its results.
    if (!jobs.data?.some((j) => j.id === event.job) || !['queued', 'running'].includes(event.state) || event.item)
      reload();
  });
  const sorted = [...(jobs.data ?? [])].sort((a, b) => b.id - a.id);
  // A safety net for a dropped event stream: read running jobs again every few seconds.
  const anyRunning = sorted.some((j) => j.state === 'queued' || j.state === 'running');
  useEffect(() => {
    if (!anyRunning) return;
    const timer = setInterval(jobs.reload, 3000);
    return () => clearInterval(timer);
  }, [anyRunning, jobs.reload]);

  return (
    <Section
      title="Jobs"
      actions={
        <button type="button" onClick={jobs.reload}>
          Reload
        </button>
      }
    >
      <ErrorNote error={jobs.error} />
      {jobs.data?.length === 0 && (
        <p className="muted">No jobs yet: a clone of more than one VM (VMs page) runs as a job.</p>
      )}
      {!!sorted.length && (
        <table className="jobs">
          <thead>
            <tr>
              <th>Job</th>
              <th>Kind</th>
              <th>State</th>
              <th className="wide">Progress</th>
              <th>Started</th>
              <th>Finished</th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((job) => {
              // The stream is newer than the last read while the job runs; the read is final once it ended.
              const live = progress[job.id];
              const ended = !['queued', 'running'].includes(job.state);
              const view =
                live && !ended && live.done >= job.done
                  ? { state: live.state, done: live.done - live.failed, failed: live.failed, total: live.total }
                  : { state: job.state, done: job.done - job.failed, failed: job.failed, total: job.total };
              return (
                <tr key={job.id} data-job={job.id} className={job.id === selected ? 'selected' : undefined}>
                  <td>
                    <a href={href(['jobs'], { job: String(job.id) })}>#{job.id}</a>
                  </td>
                  <td>{job.kind}</td>
                  <td>
                    <StateBadge state={view.state} />
                  </td>
                  <td>
                    <ProgressBar done={view.done} failed={view.failed} total={view.total} label={`job ${job.id}`} />
                  </td>
                  <td>
                    <Time at={job.createdAt} />
                  </td>
                  <td>
                    <Time at={job.finishedAt} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {selected > 0 && <JobResults job={jobs.data?.find((j) => j.id === selected)} />}
    </Section>
  );
}

function JobResults({ job }: { job: Job | undefined }) {
  if (!job) return null;
  return (
    <div className="job-results">
      <h3>Job #{job.id}: items</h3>
      {job.results.length === 0 ? (
        <p className="muted">No item has finished yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>VM</th>
              <th>Hypervisor</th>
              <th>Result</th>
              <th className="num">Time</th>
            </tr>
          </thead>
          <tbody>
            {job.results.map((r) => (
              <tr key={r.name} data-item={r.name}>
                <td>{r.name}</td>
                <td>{r.hypervisor}</td>
                <td>{r.ok ? <StateBadge state="succeeded" /> : <span className="error inline">{r.error}</span>}</td>
                <td className="num">{(r.ms / 1000).toFixed(1)} s</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
