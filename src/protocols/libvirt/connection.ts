/**
 * One connection to a libvirt daemon: serial-matched calls with timeouts, error replies as
 * LibvirtError, keepalive (PINGs answered; when started, PINGs sent after a quiet interval and the
 * connection closed when `count` of them go unanswered), and events (MESSAGE packets) to listeners.
 * The transport is any byte stream (unix socket, TCP, an SSH channel).
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { XdrReader, XdrWriter } from '../xdr/xdr.ts';
import { KeepaliveProcedure } from './procedures.ts';
import {
  encodePacket,
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
  MessageKind,
  MessageStatus,
  PacketFramer,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
  type Packet,
} from './packet.ts';
import { LibvirtError, readError } from './types.ts';

const keepalivePacket = (procedure: number) =>
  encodePacket({
    program: KEEPALIVE_PROGRAM,
    version: KEEPALIVE_PROTOCOL_VERSION,
    procedure,
    type: MessageKind.Message,
    serial: 0,
    status: MessageStatus.Ok,
  });

interface Pending {
  resolve: (body: Buffer) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

export interface KeepaliveOptions {
  /** Quiet time after which a PING is sent (libvirt's default: 5 s). */
  readonly intervalMs: number;
  /** PINGs without any answer before the connection is declared dead (libvirt's default: 5). */
  readonly count: number;
}

export class KeepaliveTimeoutError extends Error {
  override readonly name = 'KeepaliveTimeoutError';
}

export class LibvirtConnection extends EventEmitter<{ event: [Packet]; close: [Error | undefined] }> {
  readonly #stream: Duplex;
  readonly #framer = new PacketFramer();
  readonly #pending = new Map<number, Pending>();
  /** Uploads waiting for the daemon's end-of-stream confirmation, by serial. */
  readonly #streams = new Map<number, Pending>();
  #serial = 0;
  #closed: Error | undefined;
  #lastHeard = Date.now();
  #unanswered = 0;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  /** Keepalive counters, for health reporting and tests. */
  readonly keepalive = { pingsSent: 0, pongsReceived: 0, pingsAnswered: 0 };

  constructor(
    stream: Duplex,
    private readonly callTimeoutMs = 30_000,
  ) {
    super();
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      this.#lastHeard = Date.now();
      this.#unanswered = 0; // anything from the daemon shows it is alive
      try {
        for (const packet of this.#framer.push(chunk)) this.#onPacket(packet);
      } catch (error) {
        this.#fail(error as Error); // a stream we cannot frame any more is dead
        stream.destroy();
      }
    });
    stream.on('error', (error) => this.#fail(error));
    stream.on('close', () => this.#fail(new ConnectionClosedError('connection to libvirt closed')));
  }

  static unix(path: string, callTimeoutMs?: number): Promise<LibvirtConnection> {
    return new Promise((resolve, reject) => {
      const socket: Socket = createConnection(path);
      socket.once('connect', () => resolve(new LibvirtConnection(socket, callTimeoutMs)));
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * libvirtd stops reading a client's socket while it has `max_client_requests` (default 5) calls
   * in progress, and then stream data and keepalive answers on that socket wait too. So a burst of
   * calls on one connection queues here, below that limit, instead of in the daemon's socket.
   */
  static readonly MAX_IN_FLIGHT = 4;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  async #acquire(): Promise<void> {
    if (this.#inFlight < LibvirtConnection.MAX_IN_FLIGHT) {
      this.#inFlight += 1;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next)
      next(); // the slot passes straight to the next waiter
    else this.#inFlight -= 1;
  }

  /** Calls a REMOTE procedure; resolves with its decoded reply. */
  async call<T = void>(
    procedure: number,
    writeArgs?: (w: XdrWriter) => void,
    readReply?: (r: XdrReader) => T,
    timeoutMs = this.callTimeoutMs,
  ): Promise<T> {
    await this.#acquire();
    try {
      return await this.#send(procedure, writeArgs, readReply, timeoutMs).reply;
    } finally {
      this.#release();
    }
  }

  /** Sends a CALL now (its serial is taken synchronously) and returns the pending reply. */
  #send<T>(
    procedure: number,
    writeArgs: ((w: XdrWriter) => void) | undefined,
    readReply: ((r: XdrReader) => T) | undefined,
    timeoutMs: number,
  ): { serial: number; reply: Promise<T> } {
    if (this.#closed) return { serial: 0, reply: Promise.reject(this.#closed) };
    const serial = (this.#serial = (this.#serial + 1) >>> 0);
    const args = new XdrWriter();
    writeArgs?.(args);
    const packet = encodePacket(
      {
        program: REMOTE_PROGRAM,
        version: REMOTE_PROTOCOL_VERSION,
        procedure,
        type: MessageKind.Call,
        serial,
        status: MessageStatus.Ok,
      },
      args.toBuffer(),
    );
    const reply = this.#expect(
      this.#pending,
      serial,
      timeoutMs,
      `libvirt procedure ${procedure} timed out after ${timeoutMs} ms`,
    );
    this.#stream.write(packet);
    const decoded = reply.then((body) => {
      const reader = new XdrReader(body);
      const value = readReply ? readReply(reader) : (undefined as T);
      reader.end();
      return value;
    });
    return { serial, reply: decoded };
  }

  /** Waits for the packet that settles `serial` in `waiting` (a reply, or an upload's confirmation), or the timeout. */
  #expect(waiting: Map<number, Pending>, serial: number, timeoutMs: number, timeoutMessage: string): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(serial);
        reject(new Error(timeoutMessage));
      }, timeoutMs);
      waiting.set(serial, { resolve, reject, timer });
    });
  }

  /** Settles what waits for this packet's serial: its body, or the libvirt error it carries. */
  #settle(waiting: Map<number, Pending>, packet: Packet): void {
    const pending = waiting.get(packet.header.serial);
    if (!pending) return; // an answer after its call timed out
    waiting.delete(packet.header.serial);
    clearTimeout(pending.timer);
    if (packet.header.status !== MessageStatus.Error) return pending.resolve(packet.body);
    try {
      pending.reject(readError(new XdrReader(packet.body)));
    } catch (error) {
      pending.reject(error as Error);
    }
  }

  /**
   * A call that uploads a byte stream (e.g. storage volume upload): the CALL, its REPLY, then the
   * bytes as STREAM packets (status CONTINUE), then an empty STREAM packet with status OK, which the
   * daemon confirms with its own (or answers with an error). Chunks respect the socket's backpressure.
   */
  async upload(
    procedure: number,
    writeArgs: (w: XdrWriter) => void,
    data: Buffer,
    timeoutMs = this.callTimeoutMs,
    chunkBytes = 256 * 1024,
  ): Promise<void> {
    await this.#acquire(); // one slot for the call and its whole stream
    try {
      const { serial, reply } = this.#send(procedure, writeArgs, undefined, timeoutMs);
      await reply;
      const header = (status: MessageStatus) => ({
        program: REMOTE_PROGRAM,
        version: REMOTE_PROTOCOL_VERSION,
        procedure,
        type: MessageKind.Stream,
        serial,
        status,
      });
      const confirmed = this.#expect(
        this.#streams,
        serial,
        timeoutMs,
        `libvirt upload (procedure ${procedure}) not confirmed after ${timeoutMs} ms`,
      );
      confirmed.catch(() => undefined); // observed below; an early daemon error must not go unhandled meanwhile
      for (let offset = 0; offset < data.length; offset += chunkBytes) {
        if (this.#closed) break;
        const ok = this.#stream.write(
          encodePacket(header(MessageStatus.Continue), data.subarray(offset, offset + chunkBytes)),
        );
        if (!ok) await new Promise((r) => this.#stream.once('drain', r));
      }
      if (!this.#closed) this.#stream.write(encodePacket(header(MessageStatus.Ok)));
      await confirmed;
    } finally {
      this.#release();
    }
  }

  #onPacket(packet: Packet): void {
    const { header } = packet;
    if (header.program === KEEPALIVE_PROGRAM) {
      if (header.procedure === KeepaliveProcedure.Ping) {
        this.keepalive.pingsAnswered += 1;
        this.#stream.write(keepalivePacket(KeepaliveProcedure.Pong));
      } else if (header.procedure === KeepaliveProcedure.Pong) {
        this.keepalive.pongsReceived += 1;
      }
      return;
    }
    if (header.type === MessageKind.Message) {
      this.emit('event', packet);
      return;
    }
    if (header.type === MessageKind.Stream) {
      // CONTINUE carries download data, which kvmfleet never asks for; OK or ERROR ends an upload.
      if (header.status !== MessageStatus.Continue) this.#settle(this.#streams, packet);
      return;
    }
    if (header.type === MessageKind.Reply) this.#settle(this.#pending, packet);
  }

  /**
   * Sends a PING after each quiet interval; after `count` unanswered ones the connection is closed
   * with a KeepaliveTimeoutError (pending calls fail with it). Only for daemons that support the
   * keepalive program (LibvirtClient.enableKeepalive checks).
   */
  startKeepalive(options: KeepaliveOptions): void {
    if (this.#closed || this.#keepaliveTimer) return;
    const tick = Math.max(10, Math.floor(options.intervalMs / 2));
    this.#keepaliveTimer = setInterval(() => {
      if (Date.now() - this.#lastHeard < options.intervalMs * (this.#unanswered + 1)) return;
      if (this.#unanswered >= options.count) {
        this.#fail(
          new KeepaliveTimeoutError(
            `libvirt did not answer ${options.count} keepalive PINGs ${options.intervalMs} ms apart: connection dead`,
          ),
        );
        this.#stream.destroy();
        return;
      }
      this.#unanswered += 1;
      this.keepalive.pingsSent += 1;
      this.#stream.write(keepalivePacket(KeepaliveProcedure.Ping));
    }, tick);
    this.#keepaliveTimer.unref(); // keepalive never keeps a process alive by itself
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    clearInterval(this.#keepaliveTimer);
    for (const pending of [...this.#pending.values(), ...this.#streams.values()]) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#streams.clear();
    this.emit('close', error instanceof ConnectionClosedError ? undefined : error);
  }

  close(): void {
    this.#stream.end();
    this.#stream.destroy();
    this.#fail(new ConnectionClosedError('connection closed by kvmfleet'));
  }
}

export { LibvirtError };
