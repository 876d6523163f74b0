/**
 * A boot HTTP request without a Host header (HTTP/1.0 clients may send none) would build URLs
 * like `http:///boot/…` into the iPXE script. This onRequest hook gives such a request the
 * configured boot base URL's host, else the address and port the request arrived on — an
 * address the machine demonstrably reaches us at.
 */
import type { FastifyRequest } from 'fastify';

export function hostFallbackHook(configuredBaseUrl?: string): (request: FastifyRequest) => Promise<void> {
  let configured: string | undefined;
  try {
    configured = configuredBaseUrl ? new URL(configuredBaseUrl).host || undefined : undefined;
  } catch {
    configured = undefined;
  }
  return async (request) => {
    if (request.headers.host) return;
    const socket = request.raw.socket;
    const local = socket.localAddress?.replace(/^::ffff:/, '');
    const arrived = local ? `${local.includes(':') ? `[${local}]` : local}:${socket.localPort}` : undefined;
    const host = configured ?? arrived;
    if (host) request.headers.host = host;
  };
}
