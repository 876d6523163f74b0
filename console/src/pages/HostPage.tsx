/**
 * One host: its boot timeline as the steps of a network install (DHCP → TFTP → script → kernel →
 * Kickstart → built), filled in live from the event stream, and every event below.
 */
import { useState } from 'react';
import { api, enc } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { href } from '../router.ts';
import type { Host, TimelineEntry } from '../types.ts';
import { STEPS, stepTimes } from '../timeline.ts';
import { ActionButton, describe, ErrorNote, Section, StateBadge, Time, useCan, useLoad } from '../ui.tsx';
import { POWER_BUTTONS, powerLabel, sendPower } from '../power.ts';
import { BmcSettings } from './BmcSettings.tsx';

export function HostPage({ hostname }: { hostname: string }) {
  const host = useLoad(() => api<Host>('GET', `/api/v1/hosts/${enc(hostname)}`), [hostname]);
  const timeline = useLoad(() => api<TimelineEntry[]>('GET', `/api/v1/hosts/${enc(hostname)}/timeline`), [hostname]);
  const [live, setLive] = useState<TimelineEntry[]>([]);
  const canWrite = useCan('write');

  useLiveEvents((event) => {
    if (event.type !== 'host' || event.host !== hostname) return;
    setLive((l) => [...l, { at: event.at, kind: event.kind, detail: event.detail }]);
    if (['build-started', 'built', 'build-failed', 'rebuild-requested', 'adopted', 'power'].includes(event.kind))
      host.reload();
  });

  // Live events the loaded timeline does not have yet are appended (same time, kind and detail: the same event).
  const loaded = timeline.data ?? [];
  const lastLoaded = loaded.at(-1)?.at ?? '';
  const same = (a: TimelineEntry, b: TimelineEntry) =>
    a.at === b.at && a.kind === b.kind && JSON.stringify(a.detail) === JSON.stringify(b.detail);
  const events = [
    ...loaded,
    ...live.filter((e) => e.at > lastLoaded || (e.at === lastLoaded && !loaded.some((l) => same(l, e)))),
  ];
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
          <>
            {canWrite && host.data?.bmc
              ? POWER_BUTTONS.map((b) => (
                  <ActionButton
                    key={b.action}
                    label={b.label}
                    danger={b.danger}
                    title="through the host's BMC (asks first)"
                    action={async () => {
                      if (await sendPower(hostname, b.action)) host.reload();
                    }}
                  />
                ))
              : null}
            {canWrite && host.data && host.data.buildState !== 'discovered' ? (
              <ActionButton
                label="Rebuild"
                title="install again at the next network boot"
                action={async () => (
                  await api('POST', `/api/v1/hosts/${enc(hostname)}/rebuild`),
                  setLive([]),
                  timeline.reload(),
                  host.reload()
                )}
              />
            ) : null}
          </>
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
            <dt>Power</dt>
            <dd data-power={host.data.power?.state ?? ''} title={powerLabel(host.data.power).title}>
              {host.data.bmc ? powerLabel(host.data.power).text : 'no BMC'}
              {host.data.power && (
                <>
                  {' '}
                  (read <Time at={host.data.power.checkedAt} />)
                </>
              )}
            </dd>
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
      <Previews hostname={hostname} canSeeKickstart={canWrite} />
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
      <BmcSettings hostname={hostname} canWrite={canWrite} onSaved={() => host.reload()} />
    </>
  );
}

/** What the host would be told now, without side effects: its iPXE script, and (operators) its Kickstart. */
function Previews({ hostname, canSeeKickstart }: { hostname: string; canSeeKickstart: boolean }) {
  const [shown, setShown] = useState<{ what: string; text: string }>();
  const [error, setError] = useState<string>();
  const show = (what: string, path: string) => async () => {
    setError(undefined);
    try {
      setShown({ what, text: await api<string>('GET', path) });
    } catch (e) {
      setError(describe(e));
    }
  };
  return (
    <Section title="What it would get now">
      <div className="buttons">
        <ActionButton
          label="iPXE script (BIOS)"
          action={show('iPXE script (BIOS)', `/api/v1/hosts/${enc(hostname)}/boot-script?platform=pcbios`)}
        />
        <ActionButton
          label="iPXE script (UEFI)"
          action={show('iPXE script (UEFI)', `/api/v1/hosts/${enc(hostname)}/boot-script?platform=efi`)}
        />
        {canSeeKickstart && (
          <ActionButton
            label="Kickstart"
            title="holds the root password hash: operators only"
            action={show('Kickstart', `/api/v1/hosts/${enc(hostname)}/kickstart`)}
          />
        )}
      </div>
      <ErrorNote error={error} />
      {shown && (
        <pre className="preview" data-preview={shown.what} aria-label={shown.what}>
          {shown.text}
        </pre>
      )}
    </Section>
  );
}
