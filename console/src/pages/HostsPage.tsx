/** Hosts: filter by site, state and name; each links to its boot timeline. */
import { useEffect, useState } from 'react';
import { api } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { href, navigate } from '../router.ts';
import type { BuildState, Host, Site } from '../types.ts';
import { ErrorNote, Section, StateBadge, Time, useLoad, useThrottled } from '../ui.tsx';
import { powerLabel } from '../power.ts';

const STATES: BuildState[] = ['discovered', 'ready', 'building', 'built', 'failed'];
/** A page of hosts: a site has hundreds; the filters (applied by the API) narrow it. */
const PAGE = 500;

export function HostsPage({ query }: { query: URLSearchParams }) {
  const site = query.get('site') ?? '';
  const state = query.get('state') ?? '';
  const [search, setSearch] = useState('');
  const [q, setQ] = useState(''); // the search, once typing pauses
  useEffect(() => {
    const timer = setTimeout(() => setQ(search.trim()), 300);
    return () => clearTimeout(timer);
  }, [search]);
  const [total, setTotal] = useState<number>();
  const sites = useLoad(() => api<Site[]>('GET', '/api/v1/sites'), []);
  const hosts = useLoad(() => {
    const query = new URLSearchParams(Object.entries({ site, state, q, limit: String(PAGE) }).filter(([, v]) => v));
    return api<Host[]>('GET', `/api/v1/hosts?${query.toString()}`, {
      headers: (h) => setTotal(Number(h.get('x-total-count') ?? 0)),
    });
  }, [site, state, q]);
  const reload = useThrottled(hosts.reload, 2000);
  useLiveEvents((event) => event.type === 'host' && reload());
  const shown = hosts.data ?? [];

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
          <input
            type="search"
            placeholder="name, MAC or address"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
        </label>
        <span className="muted" data-testid="host-count">
          {hosts.data
            ? `${total ?? shown.length} host(s)${(total ?? 0) > shown.length ? `, first ${shown.length} shown` : ''}`
            : 'loading…'}
        </span>
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
            <th>Power</th>
            <th>Since</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((h) => (
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
              <td data-power={h.power?.state ?? ''} title={powerLabel(h.power).title}>
                {powerLabel(h.power).text}
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
