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
}
