/**
 * One host: its boot timeline as the steps of a network install (DHCP → TFTP → script → kernel →
 * Kickstart → built), filled in live from the event stream, and every event below.
 */
import { useState } from 'react';
import { api, enc } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { href } from '../router.ts';
import type { Host, TimelineEntry } from '../types.ts';
import { ActionButton, ErrorNote, Section, StateBadge, Time, useCan, useLoad } from '../ui.tsx';

interface Step {
  readonly key: string;
  readonly label: string;
  readonly kinds: readonly string[];
}

const STEPS: readonly Step[] = [
  { key: 'dhcp', label: 'DHCP', kinds: ['dhcp'] },
  { key: 'tftp', label: 'TFTP', kinds: ['tftp'] },
  { key: 'script', label: 'iPXE script', kinds: ['build-started'] },
  { key: 'kernel', label: 'Kernel', kinds: ['kernel', 'initrd'] },
  { key: 'kickstart', label: 'Kickstart', kinds: ['kickstart'] },
  { key: 'built', label: 'Built', kinds: ['built'] },
];

/** Events that start a new attempt: the steps show the latest one. */
const RESTARTS = new Set(['rebuild-requested', 'adopted', 'build-failed']);

/** When each step was first reached in the current attempt (DHCP and TFTP may come just before a rebuild's script). */
export function stepTimes(events: readonly TimelineEntry[]): Map<string, string> {
  let start = 0;
  events.forEach((e, i) => {
    if (RESTARTS.has(e.kind)) start = i + 1;
  });
  // The firmware's DHCP and TFTP of this attempt come before its script: look back to the last ones before it.
  const firstScript = events.findIndex((e, i) => i >= start && e.kind === 'build-started');
  const times = new Map<string, string>();
  for (const step of STEPS) {
    const from = step.key === 'dhcp' || step.key === 'tftp' ? 0 : start;
    const until = (step.key === 'dhcp' || step.key === 'tftp') && firstScript >= 0 ? firstScript : events.length;
    const candidates = events.slice(from, until).filter((e) => step.kinds.includes(e.kind));
    const hit = step.key === 'dhcp' || step.key === 'tftp' ? candidates.at(-1) : candidates[0];
    if (hit) times.set(step.key, hit.at);
  }
  return times;
}

export function HostPage({ hostname }: { hostname: string }) {
  const host = useLoad(() => api<Host>('GET', `/api/v1/hosts/${enc(hostname)}`), [hostname]);
  const timeline = useLoad(() => api<TimelineEntry[]>('GET', `/api/v1/hosts/${enc(hostname)}/timeline`), [hostname]);
  const [live, setLive] = useState<TimelineEntry[]>([]);
  const canWrite = useCan('write');

  useLiveEvents((event) => {
    if (event.type !== 'host' || event.host !== hostname) return;
    setLive((l) => [...l, { at: event.at, kind: event.kind, detail: event.detail }]);
    if (['build-started', 'built', 'build-failed', 'rebuild-requested', 'adopted'].includes(event.kind)) host.reload();
  });

  // Live events newer than the loaded timeline are appended (a reload of the timeline resets them).
  const loaded = timeline.data ?? [];
  const lastLoaded = loaded.at(-1)?.at ?? '';
  const events = [...loaded, ...live.filter((e) => e.at > lastLoaded)];
  const times = stepTimes(events);
  const failed = host.data?.buildState === 'failed';

  return (
    <>
      <p>
        <a href={href(['hosts'])}>← Hosts</a>
      </p>
      <Section
        title={hostname}
        actions={
          canWrite && host.data && host.data.buildState !== 'discovered' ? (
            <ActionButton label="Rebuild" title="install again at the next network boot" action={async () => (await api('POST', `/api/v1/hosts/${enc(hostname)}/rebuild`), setLive([]), timeline.reload(), host.reload())} />
          ) : null
        }
      >
        <ErrorNote error={host.error ?? timeline.error} />
        {host.data && (
          <dl className="facts">
            <dt>State</dt>
            <dd>
              <StateBadge state={host.data.buildState} /> since <Time at={host.data.stateChangedAt} />
            </dd>
            <dt>MAC</dt>
            <dd className="mono">{host.data.macs.join(' ')}</dd>
            <dt>Address</dt>
            <dd className="mono">{host.data.ip ?? 'dynamic'}</dd>
            <dt>Network / site</dt>
            <dd>
              {host.data.network ?? '—'} / {host.data.site ?? '—'}
            </dd>
            <dt>Profile</dt>
            <dd>{host.data.profile ?? '—'}</dd>
          </dl>
        )}
        <ol className="steps" aria-label="boot timeline">
          {STEPS.map((step) => {
            const at = times.get(step.key);
            return (
              <li key={step.key} data-step={step.key} className={at ? 'done' : failed ? 'failed' : 'pending'}>
                <span className="step-label">{step.label}</span>
                <span className="step-time">{at ? <Time at={at} /> : '…'}</span>
              </li>
            );
          })}
        </ol>
      </Section>
      <Section title="Events">
        <table className="events">
          <thead>
            <tr>
              <th>At</th>
              <th>Event</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {[...events].reverse().map((e, i) => (
              <tr key={`${e.at}-${e.kind}-${i}`} data-event={e.kind}>
                <td>
                  <Time at={e.at} />
                </td>
                <td>{e.kind}</td>
                <td className="mono detail">{Object.keys(e.detail).length ? JSON.stringify(e.detail) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}
