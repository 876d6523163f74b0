/**
 * HTTP/1.1 requests written byte for byte on a TCP socket, so the request target reaches the
 * server exactly as spelled (fetch and http.request normalise paths, and cannot send absolute form).
 * The socket is not half-closed after the request (Node's server takes that as an abort); the
 * server closes it after its answer (Connection: close).
 */
import { request } from 'node:http';
import { connect } from 'node:net';

export interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface RawRequest {
  readonly method: string;
  /** The request target as sent: /a/%62, http://h/a, *, … */
  readonly target: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  /** Connect from this local address (a 127.x address other than 127.0.0.1, say). */
  readonly localAddress?: string;
}

export function rawRequest(port: number, request: RawRequest, host = '127.0.0.1'): Promise<RawReply> {
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body);
  const headers: Record<string, string> = {
    host: `localhost:${port}`,
    connection: 'close',
    ...(body.length || request.method !== 'GET' ? { 'content-length': String(body.length) } : {}),
    ...request.headers,
  };
  const head = `${request.method} ${request.target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(
      { port, host, ...(request.localAddress ? { localAddress: request.localAddress } : {}) },
      () => socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body])),
    );
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0)
        return reject(new Error(`no HTTP answer to ${request.method} ${request.target}: ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
      const replyHeaders = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      let rest = text.slice(split + 4);
      if (/chunked/i.test(replyHeaders['transfer-encoding'] ?? '')) rest = dechunk(rest);
      resolve({ status, headers: replyHeaders, body: rest });
    });
  });
}

function dechunk(text: string): string {
  let out = '';
  for (let at = 0; ;) {
    const eol = text.indexOf('\r\n', at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!size) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/**
 * An ordinary HTTP request (http.request) sent from a chosen local address: how a test stands in for
 * a machine at its reserved or leased address (any 127.x address is local on Linux's loopback).
 */
export function httpFrom(
  localAddress: string,
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', localAddress, headers: options.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
