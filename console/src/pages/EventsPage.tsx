/** The live event stream as it arrives: host boot events, activity summaries, job progress, VM states. */
import { useState } from 'react';
import { useLiveEvents, useStreamStatus } from '../live.ts';
import type { LiveEvent } from '../types.ts';
import { Section } from '../ui.tsx';

const KEEP = 300;

function describeEvent(event: LiveEvent): string {
  switch (event.type) {
    case 'host':
      return `${event.host}: ${event.kind}${Object.keys(event.detail).length ? ` ${JSON.stringify(event.detail)}` : ''}`;
    case 'activity':
      return `last ${event.seconds} s: ${Object.entries(event.counts)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`;
    case 'job':
      return `job #${event.job} ${event.state}: ${event.done}/${event.total}${event.failed ? ` (${event.failed} failed)` : ''}${event.item ? ` — ${event.item.name} ${event.item.ok ? 'ok' : `failed: ${event.item.error ?? ''}`}` : ''}`;
    case 'vm':
      return `${event.hypervisor}/${event.name}: ${event.event} → ${event.state}`;
  }
}

export function EventsPage() {
  const status = useStreamStatus();
  const [events, setEvents] = useState<{ at: string; event: LiveEvent }[]>([]);
  const [paused, setPaused] = useState(false);
  useLiveEvents((event) => {
    if (!paused) setEvents((list) => [{ at: new Date().toISOString(), event }, ...list].slice(0, KEEP));
  });
  return (
    <Section
      title="Live events"
      actions={
        <button type="button" onClick={() => setPaused(!paused)}>
          {paused ? 'Resume' : 'Pause'}
        </button>
      }
    >
      <p className="muted">
        Stream {status}; the last {KEEP} events, newest first.
      </p>
      <ul className="event-feed">
        {events.map(({ at, event }, i) => (
          <li key={`${at}-${i}`} className={`ev ${event.type}`}>
            <span className="ev-type">{event.type}</span> {describeEvent(event)}
          </li>
        ))}
      </ul>
    </Section>
  );
}
