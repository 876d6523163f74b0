/**
 * HTTPS for one Redfish service: node:https, one keep-alive agent per conversation (one TLS
 * handshake, not one per request), every answer bounded in size and time.
 *
 * Retries, with exponential backoff, only where a repeat cannot do something twice: an idempotent
 * request (GET, DELETE) that failed or got a 503, and any request whose connection never came up
 * (refused, timed out while connecting: the service has not seen it). A POST that reached the
 * service and then failed is never sent again — a second ComputerSystem.Reset could reset a
 * machine that had just come up.
 *
 * Certificates are checked against the CA file given (or the system's store when none is given)
 * unless the operator said `insecure` for that BMC. Nothing here sees a password in clear except
 * the Authorization header it is handed; errors carry the method, path and status only.
 */
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { RedfishError } from './errors.ts';

export interface TlsPolicy {
  /** PEM CA certificates to trust instead of the system's store. */
  readonly ca?: string | Buffer;
  /** Do not verify the certificate at all (the operator's explicit choice for this BMC). */
  readonly insecure?: boolean;
}

export interface TransportOptions {
  /** Whole-exchange limit of one attempt: connect, TLS, request, answer (default 10 s). */
  readonly timeoutMs?: number;
  /** Attempts of a request that may be repeated (default 3). */
  readonly attempts?: number;
  /** First wait between attempts, doubled each time (default 250 ms). */
  readonly backoffMs?: number;
  /** Largest answer body read (default 1 MiB; a ComputerSystem is a few KiB). */
  readonly maxBodyBytes?: number;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface HttpCall {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** An absolute path on the service (checked by the caller: never a URL of another host). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly json?: unknown;
  /** Override the attempt limit (logout: one short try). */
  readonly attempts?: number;
  readonly timeoutMs?: number;
}

/** OpenSSL's and Node's names for "the peer's certificate is not trusted for this name". */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'KVMF_TIMEOUT',
]);
const IDEMPOTENT = new Set(['GET', 'DELETE']);

class AttemptError extends Error {
  constructor(
    readonly error: RedfishError,
    /** The request may have reached the service. */
    readonly reached: boolean,
  ) {
    super(error.message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RedfishTransport {
  readonly #host: string;
  readonly #port: number;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #maxBody: number;
  #retries = 0;

  constructor(host: string, port: number, tls: TlsPolicy, options: TransportOptions = {}) {
    this.#host = host;
    this.#port = port;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#attempts = Math.max(1, Math.min(options.attempts ?? 3, 8));
    this.#backoffMs = options.backoffMs ?? 250;
    this.#maxBody = options.maxBodyBytes ?? 1024 * 1024;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      rejectUnauthorized: !tls.insecure,
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    });
  }

  /** Requests sent again after a failure so far. */
  get retries(): number {
    return this.#retries;
  }

  close(): void {
    this.#agent.destroy();
  }

  async send(call: HttpCall): Promise<HttpAnswer> {
    const attempts = Math.max(1, Math.min(call.attempts ?? this.#attempts, 8));
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await this.#once(call);
        // A busy service (503) is asked again only for a request that changes nothing.
        if (answer.status === 503 && IDEMPOTENT.has(call.method) && attempt < attempts) {
          await this.#backoff(attempt);
          continue;
        }
        return answer;
      } catch (error) {
        if (!(error instanceof AttemptError)) throw error;
        const repeatable =
          error.error.kind === 'unreachable' && (!error.reached || IDEMPOTENT.has(call.method)) && attempt < attempts;
        if (!repeatable) throw error.error;
        await this.#backoff(attempt);
      }
    }
  }

  async #backoff(attempt: number): Promise<void> {
    this.#retries += 1;
    await sleep(this.#backoffMs * 2 ** (attempt - 1));
  }

  #once(call: HttpCall): Promise<HttpAnswer> {
    const what = `${call.method} ${call.path}`;
    const payload = call.json === undefined ? undefined : Buffer.from(JSON.stringify(call.json));
    return new Promise((resolve, reject) => {
      let reached = false;
      let settled = false;
      const fail = (error: RedfishError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(new AttemptError(error, reached));
      };
      const req = httpsRequest({
        host: this.#host,
        port: this.#port,
        method: call.method,
        path: call.path,
        agent: this.#agent,
        headers: {
          accept: 'application/json',
          'odata-version': '4.0',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...call.headers,
        },
      });
      const limit = call.timeoutMs ?? this.#timeoutMs;
      const timer = setTimeout(() => {
        const error = new RedfishError('unreachable', `${what}: no answer within ${limit} ms`);
        fail(error);
      }, limit);
      req.on('socket', (socket) => {
        // A reused keep-alive socket is already up: the request goes out at once.
        if (req.reusedSocket) reached = true;
        else socket.once('secureConnect', () => (reached = true));
      });
      req.on('error', (err: NodeJS.ErrnoException) => fail(classify(err, what)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > this.#maxBody) {
          fail(new RedfishError('protocol', `${what}: answer of ${declared} bytes is over ${this.#maxBody}`));
          return;
        }
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxBody) {
            fail(new RedfishError('protocol', `${what}: answer is over ${this.#maxBody} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err: NodeJS.ErrnoException) => fail(classify(err, what)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.end(payload);
    });
  }
}

function classify(err: NodeJS.ErrnoException, what: string): RedfishError {
  const code = err.code ?? '';
  if (CERTIFICATE_CODES.has(code))
    return new RedfishError(
      'certificate',
      `${what}: the BMC's TLS certificate is not trusted (${code}); give its CA file, or mark the BMC insecure`,
    );
  if (UNREACHABLE_CODES.has(code)) return new RedfishError('unreachable', `${what}: BMC unreachable (${code})`);
  // TLS alerts, a plain-HTTP peer on the HTTPS port, a malformed HTTP answer.
  return new RedfishError('protocol', `${what}: ${code || 'connection failed'}`);
}
