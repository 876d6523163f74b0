/**
 * Build tokens never reach the logs: the request serializer of the boot HTTP role writes the URLs
 * of /boot/ks/, /boot/files/ and /boot/built/ with the token replaced. Decided on the route that
 * matched (whatever the spelling), and by pattern for paths that matched nothing (a mistyped URL
 * may still hold a live token).
 */
import type { FastifyRequest } from 'fastify';

const SECRET_ROUTES: Record<string, (params: Record<string, string>) => string> = {
  '/boot/ks/:token': () => '/boot/ks/[redacted]',
  '/boot/built/:token': () => '/boot/built/[redacted]',
  '/boot/files/:token/:which': (p) => `/boot/files/[redacted]/${encodeURIComponent(p.which ?? '')}`,
};

const decoded = (url: string) => {
  try {
    return decodeURIComponent(url);
  } catch {
    return url;
  }
};

/** The URL as it may be logged. */
export function redactedUrl(request: Pick<FastifyRequest, 'url' | 'params' | 'is404' | 'routeOptions'>): string {
  const route = request.is404 ? undefined : request.routeOptions.url;
  const redact = route ? SECRET_ROUTES[route] : undefined;
  if (redact) return redact((request.params ?? {}) as Record<string, string>);
  // Anything else that spells one of those paths (absolute form, encodings): drop what follows.
  return /\/boot\/+(ks|files|built)(\/|$)/i.test(decoded(request.url))
    ? `${decoded(request.url).replace(/(\/boot\/+(ks|files|built))\/.*$/is, '$1/')}[redacted]`
    : request.url;
}

/** Fastify's request serializer with the URL redacted. */
export const bootLogSerializers = {
  req(request: FastifyRequest) {
    return {
      method: request.method,
      url: redactedUrl(request),
      host: request.host,
      remoteAddress: request.ip,
      remotePort: request.socket?.remotePort,
    };
  },
};
