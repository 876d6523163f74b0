/** The CLI talks to a running kvmfleet over its REST API, like virsh to libvirtd. */
import type { IncomingMessage } from 'node:http';
import { readText, send } from './transport.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  readonly baseUrl: string;
  readonly token?: string | undefined;
  /** CA certificate(s) to verify an https:// API with (--cacert). */
  readonly ca?: Buffer | undefined;
}

export class ApiClient {
  constructor(private readonly options: ClientOptions) {}

  async request<T>(
    method: string,
    path: string,
    body?: { json?: unknown; text?: string; contentType?: string },
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let payload: string | undefined;
    if (body?.json !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body?.text !== undefined) {
      headers['content-type'] = body.contentType ?? 'text/plain';
      payload = body.text;
    }
    let response: IncomingMessage;
    try {
      response = await send(new URL(path, this.options.baseUrl), {
        method,
        headers,
        body: payload,
        ca: this.options.ca,
      });
    } catch (error) {
      throw new ApiError(
        0,
        'KVMF_ERR_UNREACHABLE',
        `cannot reach kvmfleet at ${this.options.baseUrl} (${(error as Error).message}); is "kvmfleet serve" running? Set --url or KVMFLEET_URL${this.options.baseUrl.startsWith('https:') ? ' (and --cacert for a certificate of your own CA)' : ''}.`,
        undefined,
      );
    }
    const status = response.statusCode ?? 0;
    const text = await readText(response);
    if (status === 204) return undefined as T;
    let data: unknown = text;
    if (String(response.headers['content-type'] ?? '').startsWith('application/json')) {
      try {
        data = text ? JSON.parse(text) : undefined;
      } catch {
        data = text;
      }
    }
    if (status < 200 || status >= 300) {
      const error = (data as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
      throw new ApiError(status, error?.code ?? `HTTP_${status}`, error?.message ?? text, error?.details);
    }
    return data as T;
  }

  /** Follows a server-sent event stream, calling back with each event's name and parsed data, until it ends. */
  async events(path: string, onEvent: (name: string, data: unknown) => void): Promise<void> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response: IncomingMessage;
    try {
      response = await send(new URL(path, this.options.baseUrl), { method: 'GET', headers, ca: this.options.ca });
    } catch (error) {
      throw new ApiError(
        0,
        'KVMF_ERR_UNREACHABLE',
        `cannot reach kvmfleet at ${this.options.baseUrl} (${(error as Error).message})`,
        undefined,
      );
    }
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const text = await readText(response);
      let error: { code?: string; message?: string } | undefined;
      try {
        error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch {
        /* not JSON */
      }
      throw new ApiError(status, error?.code ?? `HTTP_${status}`, error?.message ?? text, undefined);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (name && data) onEvent(name, JSON.parse(data));
      }
    }
  }
}
