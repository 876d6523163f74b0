/**
 * A Redfish client for one conversation with one BMC (DSP0266):
 *
 *   GET /redfish/v1 (the service root answers without credentials)
 *   → POST Sessions {UserName, Password} → X-Auth-Token and the session's Location
 *     (a service without sessions, or that answers 404/405/501 there: HTTP Basic instead;
 *     a 401/403 is a refused login, not tried again another way: lockout counters)
 *   → GET Systems → the first ComputerSystem (kvmfleet's host is one machine per BMC)
 *   → Reset (POST the action's target), PATCH Boot (If-Match with the ETag it was read with),
 *     GET PowerState
 *   → DELETE the session (always, even after a failure).
 *
 * An action the system does not list in ResetType@Redfish.AllowableValues, or a boot target not
 * in BootSourceOverrideTarget@Redfish.AllowableValues, is refused before anything is sent. The
 * password goes out in one request body (or the Basic header) and is scrubbed from every error.
 */
import { RedfishError } from './errors.ts';
import {
  parseCollection,
  parseComputerSystem,
  parseErrorAnswer,
  parseJson,
  parseServiceRoot,
  odataPath,
  type BootSource,
  type ComputerSystem,
  type OverrideEnabled,
  type OverrideMode,
  type RedfishPowerState,
  type ResetType,
} from './resources.ts';
import {
  RedfishTransport,
  type HttpAnswer,
  type HttpCall,
  type TlsPolicy,
  type TransportOptions,
} from './transport.ts';

export interface RedfishTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly tls: TlsPolicy;
}

export interface RedfishOptions extends TransportOptions {
  /** Use HTTP Basic even where sessions are offered. */
  readonly basicOnly?: boolean;
}

export type AuthMode = 'session' | 'basic';

export interface BootOverride {
  readonly target: Extract<BootSource, 'Pxe' | 'Hdd'>;
  readonly enabled: Extract<OverrideEnabled, 'Once' | 'Continuous'>;
  readonly mode: OverrideMode;
}

const MAX_TOKEN = 1024;

export class RedfishSession {
  readonly #http: RedfishTransport;
  readonly #target: RedfishTarget;
  #auth: Record<string, string> = {};
  #mode: AuthMode = 'basic';
  #sessionPath: string | undefined;
  #systemPath: string | undefined;
  #systemsPath = '/redfish/v1/Systems';

  private constructor(target: RedfishTarget, options: RedfishOptions) {
    this.#target = target;
    this.#http = new RedfishTransport(target.host, target.port, target.tls, options);
  }

  static async open(target: RedfishTarget, options: RedfishOptions = {}): Promise<RedfishSession> {
    const session = new RedfishSession(target, options);
    try {
      await session.#login(options.basicOnly ?? false);
      return session;
    } catch (error) {
      await session.close();
      throw session.#scrub(error);
    }
  }

  get auth(): AuthMode {
    return this.#mode;
  }

  get retries(): number {
    return this.#http.retries;
  }

  /** The ComputerSystem as it is now, with the ETag it was read with. */
  async system(): Promise<{ system: ComputerSystem; etag?: string }> {
    const path = await this.#system();
    const answer = await this.#call({ method: 'GET', path });
    const etag =
      typeof answer.headers.etag === 'string' && answer.headers.etag.length <= 256 ? answer.headers.etag : undefined;
    return { system: parseComputerSystem(parseJson(answer.body, path), path), ...(etag ? { etag } : {}) };
  }

  async powerState(): Promise<RedfishPowerState> {
    return (await this.system()).system.powerState;
  }

  /** Refuses a reset type the system does not offer before anything is sent. */
  static check(system: ComputerSystem, type: ResetType): void {
    if (!system.reset) throw new RedfishError('unsupported', `${system.path} offers no ComputerSystem.Reset action`);
    if (system.reset.allowable && !system.reset.allowable.includes(type))
      throw new RedfishError(
        'unsupported',
        `${system.path} does not offer reset ${type} (it offers ${system.reset.allowable.join(', ') || 'none'})`,
      );
  }

  async reset(system: ComputerSystem, type: ResetType): Promise<void> {
    RedfishSession.check(system, type);
    await this.#call({ method: 'POST', path: system.reset!.target, json: { ResetType: type } });
  }

  async setBootOverride(override: BootOverride): Promise<void> {
    // One more read when the ETag went stale between our read and our write (412): never more.
    for (let round = 1; ; round++) {
      const { system, etag } = await this.system();
      if (!system.boot) throw new RedfishError('unsupported', `${system.path} has no Boot settings`);
      if (system.boot.targets && !system.boot.targets.includes(override.target))
        throw new RedfishError(
          'unsupported',
          `${system.path} does not offer boot target ${override.target} (it offers ${system.boot.targets.join(', ')})`,
        );
      if (override.mode === 'UEFI' && !system.boot.hasMode)
        throw new RedfishError(
          'unsupported',
          `${system.path} does not let the boot mode be set (no BootSourceOverrideMode)`,
        );
      if (system.boot.modes && !system.boot.modes.includes(override.mode))
        throw new RedfishError('unsupported', `${system.path} does not offer boot mode ${override.mode}`);
      const boot = {
        BootSourceOverrideTarget: override.target,
        BootSourceOverrideEnabled: override.enabled,
        ...(system.boot.hasMode ? { BootSourceOverrideMode: override.mode } : {}),
      };
      try {
        await this.#call({
          method: 'PATCH',
          path: system.path,
          headers: etag ? { 'if-match': etag } : {},
          json: { Boot: boot },
        });
        return;
      } catch (error) {
        if (!(error instanceof RedfishError && error.status === 412 && round < 2)) throw error;
      }
    }
  }

  /** Ends the session on the service (best effort, one short try) and the connection. */
  async close(): Promise<void> {
    if (this.#sessionPath) {
      const path = this.#sessionPath;
      this.#sessionPath = undefined;
      await this.#http
        .send({ method: 'DELETE', path, headers: this.#auth, attempts: 1, timeoutMs: 3000 })
        .catch(() => undefined);
    }
    this.#http.close();
  }

  async #login(basicOnly: boolean): Promise<void> {
    const root = parseServiceRoot(
      parseJson((await this.#call({ method: 'GET', path: '/redfish/v1/' }, false)).body, 'service root'),
    );
    this.#systemsPath = root.systems;
    // Links.Sessions is required in a service root; older services put it at the URI DSP0266 fixes
    // for it (SessionService itself needs credentials to read, so it cannot be asked).
    const sessions =
      root.sessions ?? (root.sessionService ? `${root.sessionService.replace(/\/$/, '')}/Sessions` : undefined);
    if (sessions && !basicOnly) {
      const answer = await this.#http.send({
        method: 'POST',
        path: sessions,
        json: { UserName: this.#target.username, Password: this.#target.password },
      });
      if (answer.status === 200 || answer.status === 201) {
        const token = answer.headers['x-auth-token'];
        if (typeof token !== 'string' || !token || token.length > MAX_TOKEN || /[\r\n]/.test(token))
          throw new RedfishError('protocol', `POST ${sessions}: a session without a usable X-Auth-Token`);
        this.#auth = { 'x-auth-token': token };
        this.#mode = 'session';
        this.#sessionPath = sessionLocation(answer, sessions);
        return;
      }
      if (answer.status === 401 || answer.status === 403) throw refused(answer, `POST ${sessions}`);
      if (![404, 405, 501].includes(answer.status)) throw failed(answer, `POST ${sessions}`);
    }
    const basic = Buffer.from(`${this.#target.username}:${this.#target.password}`).toString('base64');
    this.#auth = { authorization: `Basic ${basic}` };
    this.#mode = 'basic';
  }

  async #system(): Promise<string> {
    if (this.#systemPath) return this.#systemPath;
    const members = parseCollection(
      parseJson((await this.#call({ method: 'GET', path: this.#systemsPath })).body, this.#systemsPath),
      this.#systemsPath,
    );
    if (!members[0]) throw new RedfishError('unsupported', `${this.#systemsPath} has no ComputerSystem`);
    this.#systemPath = members[0];
    return members[0];
  }

  /** A request with the session's credentials; any status outside 2xx is a RedfishError. */
  async #call(call: HttpCall, authenticated = true): Promise<HttpAnswer> {
    try {
      const answer = await this.#http.send(
        authenticated ? { ...call, headers: { ...call.headers, ...this.#auth } } : call,
      );
      if (answer.status >= 200 && answer.status < 300) return answer;
      const what = `${call.method} ${call.path}`;
      if (answer.status === 401 || answer.status === 403) throw refused(answer, what);
      throw failed(answer, what);
    } catch (error) {
      throw this.#scrub(error);
    }
  }

  /** No error leaves with the password in it, whatever a service echoed back. */
  #scrub(error: unknown): unknown {
    const secret = this.#target.password;
    if (!(error instanceof RedfishError) || !secret || !error.message.includes(secret)) return error;
    return new RedfishError(error.kind, error.message.split(secret).join('***'), error.status, error.messageId);
  }
}

function sessionLocation(answer: HttpAnswer, sessions: string): string | undefined {
  const location = answer.headers.location;
  if (typeof location === 'string' && location.length <= 512) {
    try {
      // Location may be absolute (https://bmc/redfish/v1/…): only its path is used, on this service.
      return odataPath(new URL(location, 'https://bmc.invalid').pathname, `POST ${sessions} Location`);
    } catch {
      /* fall through to the body */
    }
  }
  try {
    const body = parseJson(answer.body, `POST ${sessions}`) as Record<string, unknown>;
    return odataPath(body['@odata.id'], `POST ${sessions} @odata.id`);
  } catch {
    return undefined; // the session then simply times out on the service
  }
}

function refused(answer: HttpAnswer, what: string): RedfishError {
  const info = parseErrorAnswer(answer.body);
  return new RedfishError(
    'auth',
    `${what}: the BMC refused the login (HTTP ${answer.status}${info.messageId ? ` ${info.messageId}` : ''}): check the user name and password`,
    answer.status,
    info.messageId,
  );
}

function failed(answer: HttpAnswer, what: string): RedfishError {
  const info = parseErrorAnswer(answer.body);
  const kind =
    answer.status === 405 || answer.status === 501 ? 'unsupported' : answer.status === 503 ? 'unreachable' : 'protocol';
  const detail = [info.messageId, info.message].filter(Boolean).join(': ');
  return new RedfishError(
    kind,
    `${what}: HTTP ${answer.status}${detail ? ` (${detail})` : ''}`,
    answer.status,
    info.messageId,
  );
}

/** Opens a session, runs `work`, and always ends the session. */
export async function withRedfishSession<T>(
  target: RedfishTarget,
  options: RedfishOptions,
  work: (session: RedfishSession) => Promise<T>,
): Promise<T> {
  const session = await RedfishSession.open(target, options);
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}
