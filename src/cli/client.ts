/** The CLI talks to a running kvmfleet over its REST API, like virsh to libvirtd. */
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
}

export class ApiClient {
  constructor(private readonly options: ClientOptions) {}

  async request<T>(method: string, path: string, body?: { json?: unknown; text?: string; contentType?: string }): Promise<T> {
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
    let response: Response;
    try {
      response = await fetch(new URL(path, this.options.baseUrl), { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    } catch (error) {
      throw new ApiError(0, 'KVMF_ERR_UNREACHABLE', `cannot reach kvmfleet at ${this.options.baseUrl} (${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}); is "kvmfleet serve" running? Set --url or KVMFLEET_URL.`, undefined);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let data: unknown = text;
    if (response.headers.get('content-type')?.startsWith('application/json')) {
      try {
        data = text ? JSON.parse(text) : undefined;
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const error = (data as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
      throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? text, error?.details);
    }
    return data as T;
  }

  /** Follows a server-sent event stream, calling back with each event's name and parsed data, until it ends. */
  async events(path: string, onEvent: (name: string, data: unknown) => void): Promise<void> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response: Response;
    try {
      response = await fetch(new URL(path, this.options.baseUrl), { headers });
    } catch (error) {
      throw new ApiError(0, 'KVMF_ERR_UNREACHABLE', `cannot reach kvmfleet at ${this.options.baseUrl} (${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message})`, undefined);
    }
    if (!response.ok || !response.body) {
      const text = await response.text();
      let error: { code?: string; message?: string } | undefined;
      try {
        error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch {
        /* not JSON */
      }
      throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? text, undefined);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
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
