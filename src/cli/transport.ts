/**
 * The CLI's HTTP(S) requests, on node:http/https rather than fetch: fetch in Node 20 cannot be given
 * a CA certificate, and an API with a self-signed certificate is verified against --cacert.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface SendOptions {
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string | undefined;
  /** Certificates to trust for https:// (PEM); default: the system's. */
  readonly ca?: Buffer | undefined;
}

export function send(url: URL, options: SendOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers = {
      ...options.headers,
      ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}),
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { method: options.method, headers, ...(options.ca ? { ca: options.ca } : {}) }, resolve)
        : httpRequest(url, { method: options.method, headers }, resolve);
    req.on('error', reject);
    req.end(options.body);
  });
}

export async function readText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
