/** Hosts: filter by site, state and name; each links to its boot timeline. */
import { useMemo, useState } from 'react';
import { api } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { href, navigate } from '../router.ts';
import type { BuildState, Host, Site } from '../types.ts';
import { ErrorNote, Section, StateBadge, Time, useLoad, useThrottled } from '../ui.tsx';

const STATES: BuildState[] = ['discovered', 'ready', 'building', 'built', 'failed'];
/** Rows drawn at once: a site has hundreds of hosts; narrowing the filter shows the rest. */
const SHOWN = 500;

export function HostsPage({ query }: { query: URLSearchParams }) {
  const site = query.get('site') ?? '';
  const state = query.get('state') ?? '';
  const [search, setSearch] = useState('');
  const sites = useLoad(() => api<Site[]>('GET', '/api/v1/sites'), []);
  const hosts = useLoad(() => api<Host[]>('GET', `/api/v1/hosts?${new URLSearchParams(Object.entries({ site, state }).filter(([, v]) => v)).toString()}`), [site, state]);
  const reload = useThrottled(hosts.reload, 2000);
  useLiveEvents((event) => event.type === 'host' && reload());

  const matching = useMemo(() => {
    const needle = search.trim().toLowerCase();
    return (hosts.data ?? []).filter((h) => !needle || h.hostname.includes(needle) || h.macs.some((m) => m.includes(needle)) || (h.ip ?? '').includes(needle));
  }, [hosts.data, search]);

  const setFilter = (next: { site?: string; state?: string }) => navigate(['hosts'], { site, state, ...next });

  return (
    <Section title="Hosts">
      <div className="filters">
        <label>
          Site
          <select value={site} onChange={(e) => setFilter({ site: e.target.value })}>
            <option value="">all</option>
            {(sites.data ?? []).map((s) => (
              <option key={s.name}>{s.name}</option>
            ))}
          </select>
        </label>
        <label>
          State
          <select value={state} onChange={(e) => setFilter({ state: e.target.value })}>
            <option value="">all</option>
            {STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Find
          <input type="search" placeholder="name, MAC or address" value={search} onChange={(e) => setSearch(e.target.value)} />
        </label>
        <span className="muted">{hosts.data ? `${matching.length} host(s)${matching.length > SHOWN ? `, first ${SHOWN} shown` : ''}` : 'loading…'}</span>
      </div>
      <ErrorNote error={hosts.error} />
      <table>
        <thead>
          <tr>
            <th>Hostname</th>
            <th>MAC</th>
            <th>Address</th>
            <th>Network</th>
            <th>Profile</th>
            <th>State</th>
            <th>Since</th>
          </tr>
        </thead>
        <tbody>
          {matching.slice(0, SHOWN).map((h) => (
            <tr key={h.hostname} data-host={h.hostname}>
              <td>
                <a href={href(['hosts', h.hostname])}>{h.hostname}</a>
              </td>
              <td className="mono">{h.macs.join(' ')}</td>
              <td className="mono">{h.ip ?? <span className="muted">dynamic</span>}</td>
              <td>{h.network ?? '—'}</td>
              <td>{h.profile ?? '—'}</td>
              <td>
                <StateBadge state={h.buildState} />
              </td>
              <td>
                <Time at={h.stateChangedAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
