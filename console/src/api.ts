/**
 * The console's only way to the API: JSON over fetch with the session's bearer token. A 401 ends
 * the session (the login form shows again); every other error carries the API's message.
 */
const TOKEN_KEY = 'kvmfleet.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The API's details: problems per row of an import, per field of a host. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}

type Listener = () => void;
const sessionEnded = new Set<Listener>();

export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  end(): void {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const listener of sessionEnded) listener();
  },
  onEnd(listener: Listener): () => void {
    sessionEnded.add(listener);
    return () => sessionEnded.delete(listener);
  },
};

export function authHeaders(): Record<string, string> {
  const token = session.token;
  return token ? { authorization: `Bearer ${token}` } : {};
}

export interface RequestOptions {
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as is, with this content type (imports of YAML and CSV). */
  readonly text?: { body: string; type: string };
  /** Reads the answer's headers (e.g. X-Total-Count of a page). */
  readonly headers?: (headers: Headers) => void;
}

export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.text) {
    headers['content-type'] = options.text.type;
    body = options.text.body;
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `the API did not answer: ${(error as Error).message}`);
  }
  options.headers?.(response.headers);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = text;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
    if (response.status === 401 && session.token && path !== '/api/v1/login') session.end();
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `${method} ${path}: HTTP ${response.status}`,
      error?.details,
    );
  }
  return data as T;
}

export const enc = encodeURIComponent;
