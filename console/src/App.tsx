/** The console's frame: who is signed in, the navigation, the live-stream state, and the page of the route. */
import { useEffect, useState, type ReactNode } from 'react';
import { api, session } from './api.ts';
import { liveStream, useStreamStatus } from './live.ts';
import { LoginPage } from './pages/LoginPage.tsx';
import { SitesPage } from './pages/SitesPage.tsx';
import { HostsPage } from './pages/HostsPage.tsx';
import { HostPage } from './pages/HostPage.tsx';
import { DiscoveredPage } from './pages/DiscoveredPage.tsx';
import { HypervisorsPage } from './pages/HypervisorsPage.tsx';
import { VmsPage } from './pages/VmsPage.tsx';
import { JobsPage } from './pages/JobsPage.tsx';
import { AuditPage } from './pages/AuditPage.tsx';
import { AccessPage } from './pages/AccessPage.tsx';
import { EventsPage } from './pages/EventsPage.tsx';
import { href, useRoute } from './router.ts';
import type { WhoAmI } from './types.ts';
import { describe, WhoAmIContext } from './ui.tsx';

/** Every page: its path (#/path[/name]), its menu label, and what it shows. One list for the menu and the routes. */
const PAGES: {
  path: string;
  label: string;
  admin?: boolean;
  render: (name: string | undefined, query: URLSearchParams) => ReactNode;
}[] = [
  { path: 'sites', label: 'Sites', render: () => <SitesPage /> },
  {
    path: 'hosts',
    label: 'Hosts',
    render: (name, query) => (name ? <HostPage hostname={name} /> : <HostsPage query={query} />),
  },
  { path: 'discovered', label: 'Discovered', render: () => <DiscoveredPage /> },
  { path: 'hypervisors', label: 'Hypervisors', render: () => <HypervisorsPage /> },
  { path: 'vms', label: 'VMs', render: () => <VmsPage /> },
  { path: 'jobs', label: 'Jobs', render: (_name, query) => <JobsPage query={query} /> },
  { path: 'events', label: 'Live events', render: () => <EventsPage /> },
  { path: 'access', label: 'Access', render: () => <AccessPage /> },
  { path: 'audit', label: 'Audit', admin: true, render: () => <AuditPage /> },
];

export function App() {
  const [who, setWho] = useState<WhoAmI | null | undefined>(undefined); // undefined: asking; null: signed out
  const [error, setError] = useState<string>();

  const refreshWho = () =>
    api<WhoAmI>('GET', '/api/v1/whoami')
      .then((w) => (setWho(w), setError(undefined)))
      .catch((e: { status?: number }) => (e.status === 401 ? setWho(null) : setError(describe(e))));

  useEffect(() => {
    void refreshWho();
    return session.onEnd(() => setWho(null));
  }, []);

  useEffect(() => {
    if (who) liveStream.start();
    else liveStream.stop();
  }, [who]);

  if (error)
    return (
      <div className="page-error">
        <p className="error">kvmfleet API: {error}</p>
        <button type="button" onClick={() => void refreshWho()}>
          Try again
        </button>
      </div>
    );
  if (who === undefined) return <p className="muted page-error">Connecting…</p>;
  if (who === null) return <LoginPage onLoggedIn={() => void refreshWho()} />;
  return (
    <WhoAmIContext.Provider value={who}>
      <Shell who={who} />
    </WhoAmIContext.Provider>
  );
}

function Shell({ who }: { who: WhoAmI }) {
  const route = useRoute();
  const status = useStreamStatus();
  const [page = 'sites', name] = route.segments;
  return (
    <div className="shell">
      <nav className="sidebar" aria-label="main">
        <a className="brand" href="#/sites">
          kvmfleet
        </a>
        <ul>
          {PAGES.filter((n) => !n.admin || who.permissions.includes('admin')).map((n) => (
            <li key={n.path}>
              <a href={href([n.path])} aria-current={page === n.path ? 'page' : undefined}>
                {n.label}
              </a>
            </li>
          ))}
        </ul>
        <div className="who">
          <span className={`stream ${status}`} title="live event stream">
            ● {status}
          </span>
          {who.open ? (
            <span className="warn">open API: no users yet</span>
          ) : (
            <>
              <span data-testid="who">
                {who.user} ({who.role})
              </span>
              <button
                type="button"
                className="link"
                onClick={() => {
                  void api('POST', '/api/v1/logout').catch(() => undefined);
                  session.end();
                }}
              >
                Sign out
              </button>
            </>
          )}
        </div>
      </nav>
      <main>{renderPage(page, name, route.query)}</main>
    </div>
  );
}

function renderPage(page: string, name: string | undefined, query: URLSearchParams) {
  return PAGES.find((p) => p.path === page)?.render(name, query) ?? <p className="error">No page “{page}”.</p>;
}
