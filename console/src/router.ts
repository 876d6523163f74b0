/** Routes live in the URL's hash (#/hosts/hv1?state=building): no server-side routes to configure. */
import { useSyncExternalStore } from 'react';

export interface Route {
  /** Path segments after '#/', e.g. ['hosts', 'hv1.example.com']. */
  readonly segments: string[];
  readonly query: URLSearchParams;
}

function current(): string {
  return window.location.hash || '#/sites';
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  return { segments: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

export function useRoute(): Route {
  const hash = useSyncExternalStore((listener) => {
    window.addEventListener('hashchange', listener);
    return () => window.removeEventListener('hashchange', listener);
  }, current);
  return parseRoute(hash);
}

export function href(segments: string[], query: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => !!e[1])).toString();
  return `#/${segments.map(encodeURIComponent).join('/')}${q ? `?${q}` : ''}`;
}

export function navigate(segments: string[], query: Record<string, string | undefined> = {}): void {
  window.location.hash = href(segments, query);
}
