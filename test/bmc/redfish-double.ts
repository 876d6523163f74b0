/**
 * A TEST DOUBLE of a Redfish BMC (Debian packages no Redfish BMC emulator): an HTTPS server on
 * 127.0.0.1 serving the resources kvmfleet uses, shaped after DMTF's published schema (DSP0266,
 * DSP8010 ServiceRoot / ComputerSystem / Session) and its public-rackmount1 mockup:
 *
 *   GET    /redfish/v1/                       ServiceRoot (no credentials needed, as DSP0266 says)
 *   POST   /redfish/v1/SessionService/Sessions  {UserName, Password} → 201, X-Auth-Token, Location
 *   DELETE /redfish/v1/SessionService/Sessions/N
 *   GET    /redfish/v1/SessionService, /redfish/v1/Systems, /redfish/v1/Systems/kvt-1 (with ETag)
 *   PATCH  /redfish/v1/Systems/kvt-1          {Boot: {BootSourceOverrideTarget, …Enabled, …Mode}}
 *   POST   /redfish/v1/Systems/kvt-1/Actions/ComputerSystem.Reset  {ResetType}
 *
 * Every request is checked against the schema's shapes before it is served: unknown or read-only
 * properties, wrong types, enum values outside the schema or outside the AllowableValues shown,
 * a wrong Content-Type or OData-Version, an unknown path or method — each gets a 4xx with a
 * Redfish error body (Base message registry ids) and is listed by violations(), which the tests
 * assert stays empty. The machine behind it is a backend: in memory, or a libvirt domain.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  BOOT_SOURCES,
  OVERRIDE_ENABLED,
  OVERRIDE_MODES,
  RESET_TYPES,
  type BootSource,
  type OverrideEnabled,
  type OverrideMode,
  type ResetType,
} from '../../src/protocols/redfish/resources.ts';

export interface BootSetting {
  target: BootSource;
  enabled: OverrideEnabled;
  mode: OverrideMode;
}

/** The machine the double stands for. */
export interface RedfishBackend {
  powerState(): Promise<'On' | 'Off'>;
  reset(type: ResetType): Promise<void>;
  setBoot(boot: BootSetting): Promise<void>;
}

export interface MemoryBackend extends RedfishBackend {
  state: 'On' | 'Off';
  /** Reset types in the order they were asked for. */
  readonly resets: ResetType[];
  readonly boots: BootSetting[];
}

export function memoryBackend(initial: 'On' | 'Off' = 'Off'): MemoryBackend {
  const backend: MemoryBackend = {
    state: initial,
    resets: [],
    boots: [],
    powerState: async () => backend.state,
    async reset(type) {
      backend.resets.push(type);
      if (type === 'ForceOff' || type === 'GracefulShutdown') backend.state = 'Off';
      else if (type !== 'Nmi') backend.state = 'On';
    },
    async setBoot(boot) {
      backend.boots.push(boot);
    },
  };
  return backend;
}

const run = promisify(execFile);

/**
 * A libvirt domain (qemu:///system) as the machine: power is the domain's state, resets are
 * virsh start / destroy / shutdown / reset, the boot override the persistent definition's boot
 * order, which the guest takes at its next start (as test/bmc/ipmi-sim.ts wires ipmi_sim).
 * Once and Continuous both set the order (the double does not undo a Once after a boot).
 */
export function libvirtBackend(domain: string): RedfishBackend & { readonly dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kvt-rf-lv-'));
  const virsh = async (...args: string[]) =>
    (await run('virsh', ['-q', '-c', 'qemu:///system', ...args])).stdout.trim();
  const running = async () => (await virsh('domstate', domain)) === 'running';
  return {
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
    powerState: async () => ((await running()) ? 'On' : 'Off'),
    async reset(type) {
      const on = await running();
      switch (type) {
        case 'On':
        case 'ForceOn':
          if (!on) await virsh('start', domain);
          return;
        case 'ForceOff':
          if (on) await virsh('destroy', domain);
          return;
        case 'GracefulShutdown':
          if (on) await virsh('shutdown', domain);
          return;
        case 'ForceRestart':
          if (on) await virsh('reset', domain);
          else await virsh('start', domain);
          return;
        case 'PowerCycle':
          if (on) await virsh('destroy', domain);
          await virsh('start', domain);
          return;
        default:
          throw new Error(`the libvirt backend does not do ${type}`);
      }
    },
    async setBoot(boot) {
      const order = boot.target === 'Pxe' ? ['network', 'hd'] : ['hd', 'network'];
      const xml = (await virsh('dumpxml', '--inactive', domain))
        .replace(/\s*<boot dev='[^']*'\/>/g, '')
        .replace('</os>', `${order.map((d) => `<boot dev='${d}'/>`).join('')}</os>`);
      const file = join(dir, 'domain.xml');
      writeFileSync(file, xml);
      await virsh('define', file);
    },
  };
}

export interface RedfishDoubleOptions {
  readonly cert: string;
  readonly key: string;
  readonly username?: string;
  readonly password?: string;
  readonly backend: RedfishBackend;
  /** Offer SessionService (default true); false: HTTP Basic only, no Sessions link. */
  readonly sessions?: boolean;
  /** Accept HTTP Basic (default true). */
  readonly basic?: boolean;
  /** ResetType@Redfish.AllowableValues shown; null: the annotation is left out. */
  readonly resetTypes?: readonly ResetType[] | null;
  readonly bootTargets?: readonly BootSource[];
  /** Show (and accept) BootSourceOverrideMode (default true). */
  readonly bootMode?: boolean;
  /** Answer the first PATCH with 412, as if someone else had just changed the system. */
  readonly staleEtagOnce?: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly auth: 'token' | 'basic' | 'none' | 'bad';
  readonly ifMatch?: string;
  readonly body?: unknown;
  /** The MessageId of the error answered, if any. */
  readonly error?: string;
}

export interface RedfishDouble {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly requests: RecordedRequest[];
  /** Requests the double refused as not matching the schema (4xx other than 401). */
  violations(): RecordedRequest[];
  /** Sessions created and not deleted. */
  openSessions(): number;
  /** The boot settings as the ComputerSystem shows them. */
  boot(): BootSetting;
  close(): Promise<void>;
}

const SYSTEM_ID = 'kvt-1';
const ROOT = '/redfish/v1';
const SYSTEM = `${ROOT}/Systems/${SYSTEM_ID}`;
const RESET_TARGET = `${SYSTEM}/Actions/ComputerSystem.Reset`;
const SESSIONS = `${ROOT}/SessionService/Sessions`;
const BASE = 'Base.1.16.0';
const MAX_BODY = 64 * 1024;

class Refusal {
  constructor(
    readonly status: number,
    readonly messageId: string,
    readonly message: string,
  ) {}
}
const refuse = (status: number, id: string, message: string) => new Refusal(status, `${BASE}.${id}`, message);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyProperties(body: Json, allowed: readonly string[], readOnly: readonly string[], where: string): void {
  for (const name of Object.keys(body)) {
    if (readOnly.includes(name)) throw refuse(400, 'PropertyNotWritable', `${where}${name} is read-only`);
    if (!allowed.includes(name))
      throw refuse(400, 'PropertyUnknown', `${where}${name} is not a property of this resource`);
  }
}

function enumOf<T extends string>(value: unknown, values: readonly T[], name: string): T {
  if (typeof value !== 'string') throw refuse(400, 'PropertyValueTypeError', `${name} must be a string`);
  if (!(values as readonly string[]).includes(value))
    throw refuse(400, 'PropertyValueNotInList', `${value} is not a value of ${name}`);
  return value as T;
}

export async function startRedfishDouble(options: RedfishDoubleOptions): Promise<RedfishDouble> {
  const username = options.username ?? 'root';
  const password = options.password ?? 'Rf-double-pass-5521';
  const sessionsOn = options.sessions ?? true;
  const basicOn = options.basic ?? true;
  const resetTypes =
    options.resetTypes === undefined
      ? (['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart'] as const)
      : options.resetTypes;
  const bootTargets = options.bootTargets ?? (['None', 'Pxe', 'Hdd', 'Cd', 'BiosSetup'] as const);
  const bootModeOn = options.bootMode ?? true;
  const backend = options.backend;
  const requests: RecordedRequest[] = [];
  const sessions = new Map<string, { id: number; token: string }>();
  let nextSession = 1;
  let generation = 1;
  let staleOnce = options.staleEtagOnce ?? false;
  let boot: BootSetting = { target: 'None', enabled: 'Disabled', mode: 'UEFI' };
  let lastPower: 'On' | 'Off' | undefined;

  const etag = () => `W/"${generation}"`;
  const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

  const authOf = (req: IncomingMessage): RecordedRequest['auth'] => {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') return [...sessions.values()].some((s) => same(s.token, token)) ? 'token' : 'bad';
    const header = req.headers.authorization;
    if (typeof header === 'string') {
      const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
      if (!m || !basicOn) return 'bad';
      return same(Buffer.from(m[1]!, 'base64').toString('utf8'), `${username}:${password}`) ? 'basic' : 'bad';
    }
    return 'none';
  };

  const serviceRoot = () => ({
    '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
    '@odata.id': `${ROOT}/`,
    Id: 'RootService',
    Name: 'kvmfleet Redfish test double',
    RedfishVersion: '1.15.0',
    UUID: '92384634-2938-2342-8820-489239905423',
    Systems: { '@odata.id': `${ROOT}/Systems` },
    ...(sessionsOn
      ? { SessionService: { '@odata.id': `${ROOT}/SessionService` }, Links: { Sessions: { '@odata.id': SESSIONS } } }
      : { Links: {} }),
  });

  const computerSystem = async () => {
    const power = await backend.powerState();
    // A power change is a change of the resource: a new ETag.
    if (lastPower !== undefined && power !== lastPower) generation += 1;
    lastPower = power;
    return {
      '@odata.type': '#ComputerSystem.v1_22_0.ComputerSystem',
      '@odata.id': SYSTEM,
      Id: SYSTEM_ID,
      Name: 'kvmfleet test system',
      SystemType: 'Virtual',
      PowerState: power,
      Status: { State: 'Enabled', Health: 'OK' },
      Boot: {
        BootSourceOverrideEnabled: boot.enabled,
        BootSourceOverrideTarget: boot.target,
        'BootSourceOverrideTarget@Redfish.AllowableValues': bootTargets,
        ...(bootModeOn ? { BootSourceOverrideMode: boot.mode } : {}),
      },
      Actions: {
        '#ComputerSystem.Reset': {
          target: RESET_TARGET,
          ...(resetTypes ? { 'ResetType@Redfish.AllowableValues': resetTypes } : {}),
        },
      },
      Links: { ManagedBy: [{ '@odata.id': `${ROOT}/Managers/BMC` }] },
    };
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) reject(refuse(413, 'GeneralError', 'request body too large'));
        else chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const jsonBody = async (req: IncomingMessage): Promise<Json> => {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json(;|$)/.test(type))
      throw refuse(415, 'UnsupportedMediaType', `Content-Type ${type || '(none)'} is not application/json`);
    const raw = await readBody(req);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      throw refuse(400, 'MalformedJSON', 'the request body is not JSON');
    }
    if (!isObject(parsed)) throw refuse(400, 'MalformedJSON', 'the request body is not a JSON object');
    return parsed;
  };

  type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

  const route = async (
    req: IncomingMessage,
    path: string,
    auth: RecordedRequest['auth'],
    note: (b: unknown) => void,
  ): Promise<Answer> => {
    const method = req.method ?? '';
    const version = req.headers['odata-version'];
    if (version !== undefined && version !== '4.0')
      throw refuse(412, 'HeaderInvalid', `OData-Version ${version} is not 4.0`);
    const needAuth = () => {
      if (auth === 'token' || auth === 'basic') return;
      throw refuse(401, 'NoValidSession', 'authentication is required');
    };
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw refuse(405, 'OperationNotAllowed', `${method} is not allowed on ${path}`);
    };

    if (path === ROOT || path === `${ROOT}/`) {
      allow('GET');
      return { status: 200, body: serviceRoot() };
    }
    if (sessionsOn && path === `${ROOT}/SessionService`) {
      allow('GET');
      needAuth();
      return {
        status: 200,
        body: {
          '@odata.type': '#SessionService.v1_1_9.SessionService',
          '@odata.id': `${ROOT}/SessionService`,
          Id: 'SessionService',
          Name: 'Session Service',
          ServiceEnabled: true,
          SessionTimeout: 600,
          Sessions: { '@odata.id': SESSIONS },
        },
      };
    }
    if (sessionsOn && path === SESSIONS) {
      allow('GET', 'POST');
      if (method === 'GET') {
        needAuth();
        return {
          status: 200,
          body: {
            '@odata.type': '#SessionCollection.SessionCollection',
            '@odata.id': SESSIONS,
            Name: 'Sessions',
            Members: [...sessions.values()].map((s) => ({ '@odata.id': `${SESSIONS}/${s.id}` })),
            'Members@odata.count': sessions.size,
          },
        };
      }
      const body = await jsonBody(req);
      note({ ...body, ...(typeof body.Password === 'string' ? { Password: '(redacted)' } : {}) });
      onlyProperties(body, ['UserName', 'Password', 'Context'], ['Id', 'Name', '@odata.id'], '');
      if (typeof body.UserName !== 'string' || typeof body.Password !== 'string')
        throw refuse(400, 'PropertyMissing', 'UserName and Password are required strings');
      if (!(same(body.UserName, username) && same(body.Password, password)))
        throw refuse(401, 'ResourceAtUriUnauthorized', 'the user name or password is wrong');
      const id = nextSession++;
      const token = randomBytes(16).toString('hex');
      sessions.set(String(id), { id, token });
      return {
        status: 201,
        headers: { 'x-auth-token': token, location: `${SESSIONS}/${id}` },
        body: {
          '@odata.type': '#Session.v1_7_0.Session',
          '@odata.id': `${SESSIONS}/${id}`,
          Id: String(id),
          Name: 'Session',
          UserName: username,
        },
      };
    }
    const session = sessionsOn ? new RegExp(`^${SESSIONS}/(\\d+)$`).exec(path) : null;
    if (session) {
      allow('GET', 'DELETE');
      needAuth();
      if (!sessions.has(session[1]!)) throw refuse(404, 'ResourceNotFound', `no session ${session[1]}`);
      if (method === 'DELETE') {
        sessions.delete(session[1]!);
        return { status: 204 };
      }
      return { status: 200, body: { '@odata.id': path, Id: session[1], UserName: username } };
    }
    if (path === `${ROOT}/Systems`) {
      allow('GET');
      needAuth();
      return {
        status: 200,
        body: {
          '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection',
          '@odata.id': `${ROOT}/Systems`,
          Name: 'Computer System Collection',
          Members: [{ '@odata.id': SYSTEM }],
          'Members@odata.count': 1,
        },
      };
    }
    if (path === SYSTEM) {
      allow('GET', 'PATCH');
      needAuth();
      if (method === 'GET') {
        const body = await computerSystem();
        return { status: 200, body, headers: { etag: etag() } };
      }
      const body = await jsonBody(req);
      note(body);
      await computerSystem(); // bring the ETag up to date with the machine
      const ifMatch = req.headers['if-match'];
      if (staleOnce) {
        staleOnce = false;
        generation += 1;
      }
      if (typeof ifMatch === 'string' && ifMatch !== etag() && ifMatch !== '*')
        return { status: 412, body: errorBody(refuse(412, 'PreconditionFailed', 'the ETag does not match')) };
      onlyProperties(
        body,
        ['Boot', 'AssetTag', 'HostName'],
        ['PowerState', 'Id', 'Name', 'Status', 'Actions', 'SystemType'],
        '',
      );
      if (body.Boot === undefined) return { status: 204 };
      if (!isObject(body.Boot)) throw refuse(400, 'PropertyValueTypeError', 'Boot must be an object');
      const b = body.Boot;
      onlyProperties(
        b,
        ['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', ...(bootModeOn ? ['BootSourceOverrideMode'] : [])],
        ['BootSourceOverrideTarget@Redfish.AllowableValues'],
        'Boot/',
      );
      const next = { ...boot };
      if (b.BootSourceOverrideTarget !== undefined) {
        next.target = enumOf(b.BootSourceOverrideTarget, BOOT_SOURCES, 'BootSourceOverrideTarget');
        if (!bootTargets.includes(next.target))
          throw refuse(
            400,
            'PropertyValueNotInList',
            `${next.target} is not in BootSourceOverrideTarget@Redfish.AllowableValues`,
          );
      }
      if (b.BootSourceOverrideEnabled !== undefined)
        next.enabled = enumOf(b.BootSourceOverrideEnabled, OVERRIDE_ENABLED, 'BootSourceOverrideEnabled');
      if (b.BootSourceOverrideMode !== undefined)
        next.mode = enumOf(b.BootSourceOverrideMode, OVERRIDE_MODES, 'BootSourceOverrideMode');
      await backend.setBoot(next);
      boot = next;
      generation += 1;
      return { status: 204 };
    }
    if (path === RESET_TARGET) {
      allow('POST');
      needAuth();
      const body = await jsonBody(req);
      note(body);
      for (const name of Object.keys(body))
        if (name !== 'ResetType')
          throw refuse(400, 'ActionParameterUnknown', `${name} is not a parameter of ComputerSystem.Reset`);
      if (body.ResetType === undefined) throw refuse(400, 'ActionParameterMissing', 'ResetType is required');
      if (typeof body.ResetType !== 'string' || !(RESET_TYPES as readonly string[]).includes(body.ResetType))
        throw refuse(400, 'ActionParameterValueTypeError', `${String(body.ResetType)} is not a ResetType`);
      const type = body.ResetType as ResetType;
      if (resetTypes && !resetTypes.includes(type))
        throw refuse(400, 'ActionParameterValueNotInList', `${type} is not in ResetType@Redfish.AllowableValues`);
      await backend.reset(type);
      generation += 1;
      return { status: 204 };
    }
    throw refuse(404, 'ResourceNotFound', `${path} does not exist`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'https://double.invalid').pathname;
    const auth = authOf(req);
    let body: unknown;
    const note = (b: unknown) => (body = b);
    let answer: Answer;
    let error: string | undefined;
    try {
      answer = await route(req, path, auth, note);
    } catch (e) {
      if (!(e instanceof Refusal)) {
        answer = { status: 500, body: errorBody(refuse(500, 'InternalError', String(e))) };
        error = `${BASE}.InternalError`;
      } else {
        answer = {
          status: e.status,
          body: errorBody(e),
          ...(e.status === 401 ? { headers: { 'www-authenticate': 'Basic realm="kvt"' } } : {}),
        };
        error = e.messageId;
      }
    }
    if (answer.status === 412) error = `${BASE}.PreconditionFailed`;
    const ifMatch = req.headers['if-match'];
    requests.push({
      method: req.method ?? '',
      path,
      status: answer.status,
      auth,
      ...(typeof ifMatch === 'string' ? { ifMatch } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(error ? { error } : {}),
    });
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'odata-version': '4.0',
      ...(text ? { 'content-type': 'application/json;charset=utf-8' } : {}),
      ...answer.headers,
    });
    res.end(text);
  };

  const server: Server = createServer({ cert: options.cert, key: options.key }, (req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the Redfish double has no port');
  return {
    host: '127.0.0.1',
    port: address.port,
    username,
    password,
    requests,
    violations: () => requests.filter((r) => r.status >= 400 && r.status !== 401),
    openSessions: () => sessions.size,
    boot: () => ({ ...boot }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function errorBody(r: Refusal) {
  return {
    error: {
      code: `${BASE}.GeneralError`,
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [
        { '@odata.type': '#Message.v1_1_1.Message', MessageId: r.messageId, Message: r.message, Severity: 'Warning' },
      ],
    },
  };
}
