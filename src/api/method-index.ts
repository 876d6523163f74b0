/**
 * Which methods a path has, for 405 answers: Fastify answers a known path with an undeclared method
 * as if the path did not exist (404, no Allow). Every route is recorded as it is registered; a path
 * that matches none gives no methods (a true 404).
 */
import type { FastifyInstance } from 'fastify';

interface Entry {
  readonly pattern: RegExp;
  readonly methods: Set<string>;
}

const toPattern = (url: string) =>
  new RegExp(
    `^${url
      .split('/')
      .map((segment) =>
        segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/')}$`,
  );

export class MethodIndex {
  readonly #entries = new Map<string, Entry>();

  /** Records the routes of `app` (and its plugins) from now on. */
  watch(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const entry = this.#entries.get(route.url) ?? { pattern: toPattern(route.url), methods: new Set<string>() };
      for (const method of [route.method].flat()) entry.methods.add(method);
      this.#entries.set(route.url, entry);
    });
  }

  /** The methods some route serves at this request path (query excluded), sorted; [] if none. */
  allowed(path: string): string[] {
    let decoded = path;
    try {
      decoded = decodeURI(path);
    } catch {
      /* not decodable: match it as sent */
    }
    const methods = new Set<string>();
    for (const entry of this.#entries.values())
      if (entry.pattern.test(decoded)) for (const m of entry.methods) methods.add(m);
    return [...methods].sort();
  }
}
