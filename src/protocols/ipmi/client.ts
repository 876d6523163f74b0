/**
 * An IPMI v2.0 / RMCP+ client over UDP: one connected socket per session, stop-and-wait requests.
 *
 *   Get Channel Authentication Capabilities (v1.5 framing: also a reachability probe)
 *   → Open Session for suite 17, then 3 if the BMC refuses the algorithms (never a weaker one)
 *   → RAKP 1/2 (the BMC proves it knows the password) → RAKP 3/4 (we prove it) → K1, K2
 *   → Set Session Privilege Level (operator: enough for chassis control, no more)
 *   → signed and encrypted requests → Close Session.
 *
 * Each exchange is retransmitted with exponential backoff (timeoutMs, ×2 each time, `attempts`
 * times), so an unreachable BMC fails in a bounded time. Datagrams that do not decode, are not
 * signed with the session's K1, or answer another request are dropped and counted. The password is
 * only ever an HMAC key here: it is in no error, log line or packet.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import * as commands from './commands.ts';
import { IpmiDecodeError } from './cursor.ts';
import { COMPLETION_CODES, decodeResponse, encodeRequest, type IpmiRequest, type IpmiResponse } from './message.ts';
import { decode, encodeV15, encodeV2, PayloadType, type Decoded, type SessionKeys } from './packet.ts';
import * as rakp from './rakp.ts';

export type IpmiErrorKind = 'unreachable' | 'auth' | 'unsupported' | 'protocol' | 'completion';

export class IpmiError extends Error {
  override readonly name = 'IpmiError';
  constructor(
    readonly kind: IpmiErrorKind,
    message: string,
    /** The IPMI completion code or RMCP+ status, when the BMC gave one. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface IpmiTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
}

export interface IpmiOptions {
  /** First wait for an answer; doubled at each retransmission (default 1000 ms). */
  readonly timeoutMs?: number;
  /** Sends of one request before the BMC is declared unreachable (default 3: 1 + 2 + 4 s). */
  readonly attempts?: number;
  /** Cipher suites to offer, in order (default 17 then 3). */
  readonly suites?: readonly (3 | 17)[];
  readonly privilege?: rakp.Privilege;
}

export interface SessionInfo {
  readonly suite: 3 | 17;
  /** Suites the BMC refused before one was accepted, with its RMCP+ status. */
  readonly refused: readonly { suite: 3 | 17; status: number }[];
  /** Datagrams dropped (undecodable, unsigned, unrelated). */
  readonly dropped: number;
  /** Requests sent again because no answer came in time. */
  readonly retransmissions: number;
}

const nonZeroU32 = () => {
  for (;;) {
    const v = randomBytes(4).readUInt32LE();
    if (v !== 0) return v;
  }
};

export class IpmiSession {
  readonly #socket: Socket;
  readonly #target: IpmiTarget;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  #inbox: ((datagram: Buffer) => boolean) | undefined;
  #keys: SessionKeys | undefined;
  #bmcSessionId = 0;
  #consoleSessionId = 0;
  #sequence = 1;
  #lastInbound = 0;
  #rqSeq = 0;
  #tag = 0;
  #dropped = 0;
  #retransmissions = 0;
  #suite: 3 | 17 | undefined;
  #refused: { suite: 3 | 17; status: number }[] = [];
  #closed = false;

  private constructor(target: IpmiTarget, options: IpmiOptions) {
    this.#target = target;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#attempts = Math.max(1, Math.min(options.attempts ?? 3, 8));
    this.#socket = createSocket(isIPv6(target.host) ? 'udp6' : 'udp4');
    this.#socket.on('message', (datagram) => {
      if (!this.#inbox?.(datagram)) this.#dropped += 1;
    });
    // ICMP errors of a connected socket arrive here: the retransmission loop decides, not the event.
    this.#socket.on('error', () => {});
  }

  /** Opens an authenticated, encrypted session, or throws an IpmiError saying why not. */
  static async open(target: IpmiTarget, options: IpmiOptions = {}): Promise<IpmiSession> {
    const session = new IpmiSession(target, options);
    try {
      await session.#connect();
      await session.#establish(options.suites ?? rakp.SUITE_PREFERENCE, options.privilege ?? rakp.Privilege.Operator);
      return session;
    } catch (error) {
      session.#socket.close();
      session.#closed = true;
      throw error;
    }
  }

  get info(): SessionInfo {
    return {
      suite: this.#suite!,
      refused: [...this.#refused],
      dropped: this.#dropped,
      retransmissions: this.#retransmissions,
    };
  }

  #connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.connect(this.#target.port, this.#target.host, () => {
        this.#socket.off('error', reject);
        resolve();
      });
    }).catch((error: Error) => {
      throw new IpmiError('unreachable', `BMC ${this.#target.host}:${this.#target.port}: ${error.message}`);
    });
  }

  /** Sends `build()` until `accept` takes an answer, with backoff; `what` names the step in errors. */
  async #exchange<T>(
    what: string,
    build: () => Buffer,
    accept: (packet: Decoded) => T | undefined,
    attempts = this.#attempts,
  ): Promise<T> {
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) this.#retransmissions += 1;
      const wait = this.#timeoutMs * 2 ** attempt;
      const answer = await new Promise<T | undefined>((resolve) => {
        const timer = setTimeout(() => {
          this.#inbox = undefined;
          resolve(undefined);
        }, wait);
        this.#inbox = (datagram) => {
          let packet: Decoded;
          try {
            packet = decode(datagram, this.#keys);
          } catch (error) {
            if (error instanceof IpmiDecodeError) return false;
            throw error;
          }
          const value = accept(packet);
          if (value === undefined) return false;
          clearTimeout(timer);
          this.#inbox = undefined;
          resolve(value);
          return true;
        };
        this.#socket.send(build());
      });
      if (answer !== undefined) return answer;
    }
    throw new IpmiError(
      'unreachable',
      `BMC ${this.#target.host}:${this.#target.port} did not answer ${what} (${attempts} tries over ${this.#timeoutMs * (2 ** attempts - 1)} ms)`,
    );
  }

  async #establish(suites: readonly (3 | 17)[], privilege: rakp.Privilege): Promise<void> {
    const rq = this.#rqSeq++ & 0x3f;
    const caps = await this.#exchange(
      'Get Channel Authentication Capabilities',
      () => encodeV15(encodeRequest(commands.getChannelAuthCapabilities(privilege), rq)),
      (p) => {
        if (p.format !== 'v1.5') return undefined;
        const r = safeResponse(p.message);
        return r && r.rqSeq === rq && r.cmd === commands.Cmd.GetChannelAuthCapabilities ? r : undefined;
      },
    );
    if (caps.completionCode !== 0) throw completion('Get Channel Authentication Capabilities', caps.completionCode);
    if (!commands.parseChannelAuthCapabilities(caps.data).ipmiV20)
      throw new IpmiError(
        'unsupported',
        'the BMC does not speak IPMI v2.0 (RMCP+); IPMI v1.5 sessions are not used: their authentication is broken',
      );
    return this.#openSessions(suites, privilege, 0);
  }

  async #openSessions(offered: readonly (3 | 17)[], privilege: rakp.Privilege, rounds: number): Promise<void> {
    let suites = offered;
    for (const id of offered) {
      const suite = rakp.CIPHER_SUITES[id];
      const tag = this.#tag++ & 0xff;
      this.#consoleSessionId = nonZeroU32();
      const open = await this.#exchange(
        'Open Session',
        () =>
          encodeV2({
            payloadType: PayloadType.OpenSessionRequest,
            sessionId: 0,
            sequence: 0,
            payload: rakp.encodeOpenSessionRequest(tag, this.#consoleSessionId, suite, privilege),
          }),
        (p) =>
          p.format === 'v2' && p.payloadType === PayloadType.OpenSessionResponse
            ? decodeOr(() => rakp.decodeOpenSessionResponse(p.payload))
            : undefined,
      );
      if (open.tag !== tag) throw new IpmiError('protocol', 'Open Session answer carries another message tag');
      if (open.status !== 0) {
        if (rakp.SUITE_REFUSED.has(open.status)) {
          this.#refused.push({ suite: id, status: open.status });
          continue;
        }
        throw statusError('Open Session', open.status);
      }
      // The BMC must take what was offered: an answer with other algorithms (a downgrade) is refused.
      if (
        open.consoleSessionId !== this.#consoleSessionId ||
        open.auth !== suite.auth ||
        open.integrity !== suite.integrity ||
        open.confidentiality !== suite.confidentiality
      ) {
        throw new IpmiError(
          'protocol',
          `the BMC answered Open Session for cipher suite ${id} with other algorithms or another session`,
        );
      }
      this.#bmcSessionId = open.bmcSessionId!;
      try {
        await this.#rakp(suite, privilege);
      } catch (error) {
        // A BMC that answered RAKP 1 or 3 once ignores the same message again (its session moved on),
        // so a lost answer is recovered by a new Open Session, not by resending: up to `attempts` rounds.
        if (error instanceof IpmiError && error.kind === 'unreachable' && ++rounds < this.#attempts) {
          suites = [id, ...suites.slice(suites.indexOf(id) + 1)];
          return this.#openSessions(suites, privilege, rounds);
        }
        throw error;
      }
      this.#suite = id;
      const priv = await this.request(commands.setSessionPrivilege(privilege), { check: false });
      if (priv.completionCode !== 0)
        throw new IpmiError(
          'auth',
          `the BMC refused the ${privilegeName(privilege)} privilege for this user (${COMPLETION_CODES[priv.completionCode] ?? `completion code 0x${priv.completionCode.toString(16)}`})`,
          priv.completionCode,
        );
      return;
    }
    throw new IpmiError(
      'unsupported',
      `the BMC accepts none of cipher suites ${suites.join(', ')} (${this.#refused.map((r) => `${r.suite}: ${rakp.RMCPP_STATUS[r.status] ?? r.status}`).join('; ')}); weaker suites are never used`,
    );
  }

  async #rakp(suite: rakp.CipherSuite, privilege: rakp.Privilege): Promise<void> {
    const consoleRandom = randomBytes(16);
    const tag = this.#tag++ & 0xff;
    // Bit 4 set: name-only lookup (as ipmitool); clear, a BMC matches a user only at exactly this privilege.
    const role = 0x10 | privilege;
    const rakp2 = await this.#exchange(
      'RAKP 1',
      () =>
        encodeV2({
          payloadType: PayloadType.Rakp1,
          sessionId: 0,
          sequence: 0,
          payload: rakp.encodeRakp1(tag, this.#bmcSessionId, consoleRandom, role, this.#target.username),
        }),
      (p) =>
        p.format === 'v2' && p.payloadType === PayloadType.Rakp2
          ? decodeOr(() => rakp.decodeRakp2(p.payload, suite))
          : undefined,
      2,
    );
    if (rakp2.status !== 0) throw statusError('RAKP 2', rakp2.status);
    if (rakp2.tag !== tag || rakp2.consoleSessionId !== this.#consoleSessionId)
      throw new IpmiError('protocol', 'RAKP 2 answers another session');
    const exchange: rakp.Exchange = {
      suite,
      consoleSessionId: this.#consoleSessionId,
      bmcSessionId: this.#bmcSessionId,
      consoleRandom,
      bmcRandom: rakp2.bmcRandom!,
      bmcGuid: rakp2.bmcGuid!,
      role,
      username: this.#target.username,
      kuid: rakp.kuidOf(this.#target.password),
    };
    if (!rakp.rakp2Matches(exchange, rakp2.keyExchangeCode!)) {
      // Tell the BMC to drop the half-open session (§13.22: RAKP 3 with an error status), once.
      this.#socket.send(
        encodeV2({
          payloadType: PayloadType.Rakp3,
          sessionId: 0,
          sequence: 0,
          payload: rakp.encodeRakp3(this.#tag++ & 0xff, 0x0f, this.#bmcSessionId, Buffer.alloc(0)),
        }),
      );
      throw new IpmiError(
        'auth',
        `the BMC refused the login of user "${this.#target.username}": wrong password (RAKP 2 check failed)`,
      );
    }
    const tag3 = this.#tag++ & 0xff;
    const rakp4 = await this.#exchange(
      'RAKP 3',
      () =>
        encodeV2({
          payloadType: PayloadType.Rakp3,
          sessionId: 0,
          sequence: 0,
          payload: rakp.encodeRakp3(tag3, 0, this.#bmcSessionId, rakp.rakp3Code(exchange)),
        }),
      (p) =>
        p.format === 'v2' && p.payloadType === PayloadType.Rakp4
          ? decodeOr(() => rakp.decodeRakp4(p.payload, suite))
          : undefined,
      2,
    );
    if (rakp4.status !== 0) throw statusError('RAKP 4', rakp4.status);
    const sik = rakp.sessionIntegrityKey(exchange);
    if (rakp4.consoleSessionId !== this.#consoleSessionId || !rakp.rakp4Matches(exchange, sik, rakp4.icv!))
      throw new IpmiError('auth', 'RAKP 4 check failed: the answer is not from a BMC that knows this password');
    this.#keys = rakp.sessionKeys(suite, sik);
  }

  /** One request in the session; a non-zero completion code is an IpmiError unless `check` is false. */
  async request(request: IpmiRequest, options: { check?: boolean; attempts?: number } = {}): Promise<IpmiResponse> {
    if (this.#closed || !this.#keys) throw new IpmiError('protocol', 'the IPMI session is not open');
    const rq = this.#rqSeq++ & 0x3f;
    const keys = this.#keys;
    const response = await this.#exchange(
      `command 0x${request.cmd.toString(16)}`,
      () => {
        // A retransmission is a new packet (new session sequence number) carrying the same request sequence.
        const sequence = this.#sequence;
        this.#sequence = this.#sequence === 0xffffffff ? 1 : this.#sequence + 1;
        return encodeV2(
          {
            payloadType: PayloadType.Ipmi,
            sessionId: this.#bmcSessionId,
            sequence,
            payload: encodeRequest(request, rq),
          },
          keys,
        );
      },
      (p) => {
        if (p.format !== 'v2' || p.payloadType !== PayloadType.Ipmi || p.sessionId !== this.#consoleSessionId)
          return undefined;
        // Replayed or stale packets of this session carry a sequence number already seen.
        if (p.sequence <= this.#lastInbound) return undefined;
        const r = safeResponse(p.payload);
        if (!r || r.rqSeq !== rq || r.cmd !== request.cmd) return undefined;
        this.#lastInbound = p.sequence;
        return r;
      },
      options.attempts,
    );
    if (options.check !== false && response.completionCode !== 0)
      throw completion(`command 0x${request.cmd.toString(16)}`, response.completionCode);
    return response;
  }

  /** Close Session, one short try: the BMC times an abandoned session out anyway. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#keys) await this.request(commands.closeSession(this.#bmcSessionId), { check: false, attempts: 1 });
    } catch {
      /* the BMC expires it */
    } finally {
      this.#closed = true;
      this.#socket.close();
    }
  }
}

function safeResponse(bytes: Buffer): IpmiResponse | undefined {
  return decodeOr(() => decodeResponse(bytes));
}

function decodeOr<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (error instanceof IpmiDecodeError) return undefined;
    throw error;
  }
}

function privilegeName(p: rakp.Privilege): string {
  return { 2: 'user', 3: 'operator', 4: 'administrator' }[p] ?? String(p);
}

function statusError(step: string, status: number): IpmiError {
  const text = rakp.RMCPP_STATUS[status] ?? `status 0x${status.toString(16)}`;
  return new IpmiError(
    rakp.LOGIN_REFUSED.has(status) ? 'auth' : 'protocol',
    `the BMC refused ${step}: ${text}`,
    status,
  );
}

function completion(step: string, code: number): IpmiError {
  const text = COMPLETION_CODES[code] ?? `completion code 0x${code.toString(16)}`;
  // Invalid command / data field / not supported now: the BMC does not do this.
  const kind: IpmiErrorKind =
    code === 0xc1 || code === 0xcc || code === 0xd5 ? 'unsupported' : code === 0xd4 ? 'auth' : 'completion';
  return new IpmiError(kind, `the BMC answered ${step} with "${text}"`, code);
}

/** Opens a session, runs `work`, closes the session whatever happens. */
export async function withIpmiSession<T>(
  target: IpmiTarget,
  options: IpmiOptions,
  work: (session: IpmiSession) => Promise<T>,
): Promise<T> {
  const session = await IpmiSession.open(target, options);
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}
