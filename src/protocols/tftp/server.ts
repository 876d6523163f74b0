/**
 * A read-only TFTP server: the listener takes requests, each read runs on its own socket.
 * Write requests are refused; malformed datagrams are counted and dropped without a reply
 * (a reply to garbage from a spoofed source would make us an amplifier).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { FileStore } from './files.ts';
import { negotiate, type TransferLimits } from './options.ts';
import { NetasciiCache } from './netascii.ts';
import {
  decodePacket,
  encodeError,
  Opcode,
  TftpDecodeError,
  TftpErrorCode,
  TftpUnknownModeError,
  type RequestPacket,
} from './packet.ts';
import { openTransfer, sharedPacketCache, type TransferOutcome, type TransferSpec } from './transfer.ts';
import { TransferPool, type TransferHandle } from './transfer-pool.ts';

export { toNetascii } from './netascii.ts';

export interface TftpServerOptions {
  readonly files: FileStore;
  readonly host?: string;
  readonly port?: number;
  readonly limits?: Partial<TransferLimits>;
  /** Timeouts in a row after which a transfer is abandoned. */
  readonly maxRetries?: number;
  /** Transfers at once (default 2000); more are refused with "server busy" so clients retry. */
  readonly maxTransfers?: number;
  /** Transfers at once from one address (default 32). */
  readonly maxPerSource?: number;
  /**
   * Transfers whose client has acknowledged nothing yet (default 256). A spoofed request never
   * will: when this many wait, the oldest of them gives its slot to the new request, so a flood
   * of requests cannot lock real clients out (they acknowledge within a round trip).
   */
  readonly maxUnconfirmed?: number;
  /** Longest a transfer may go without hearing its client, whatever the timeout (default 10 s). */
  readonly maxSilenceMs?: number;
  /** Memory for netascii copies (default 64 MiB). */
  readonly netasciiCacheBytes?: number;
  /**
   * Worker threads that run the transfers (transfer-pool.ts), started at the first transfer; 0 runs
   * them in this thread. Default 0: a worker's "confirmed" reaches this thread late under load, so
   * the unconfirmed limit can evict transfers that are running (5 of 500 curl clients stalled in a
   * loaded CI run); on by default once eviction asks the worker.
   */
  readonly workers?: number;
  /** Called once per finished transfer (boot timeline, metrics). */
  readonly onTransfer?: (event: TransferEvent) => void;
}

export interface TransferEvent {
  readonly client: string;
  readonly filename: string;
  readonly outcome: TransferOutcome | 'refused';
  readonly bytes: number;
  readonly detail?: string;
}

export interface TftpStats {
  requests: number;
  active: number;
  /** Slots taken back from unconfirmed transfers for newer requests. */
  evicted: number;
  /** Requests refused for a limit: by source, or in total. */
  busyPerSource: number;
  busyTotal: number;
  completed: number;
  failed: number;
  refused: number;
  malformed: number;
  bytesSent: number;
}

export class TftpServer {
  readonly stats: TftpStats = {
    requests: 0,
    active: 0,
    evicted: 0,
    busyPerSource: 0,
    busyTotal: 0,
    completed: 0,
    failed: 0,
    refused: 0,
    malformed: 0,
    bytesSent: 0,
  };
  readonly #netascii: NetasciiCache;
  /** Active transfers per client address, in start order (the oldest first). */
  readonly #bySource = new Map<string, Set<TransferHandle>>();
  readonly #options: TftpServerOptions;
  readonly #limits: TransferLimits;
  readonly #transfers = new Set<TransferHandle>();
  #socket: Socket | undefined;
  #pool: TransferPool | undefined;

  constructor(options: TftpServerOptions) {
    this.#options = options;
    this.#limits = {
      maxBlockSize: 65464,
      maxWindowSize: 64,
      defaultTimeoutMs: 1000,
      maxTimeoutSeconds: 5,
      ...options.limits,
    };
    this.#netascii = new NetasciiCache(options.netasciiCacheBytes);
  }

  /** Bytes held in memory: file contents, shared DATA packets (here and in the workers), netascii copies. */
  memory(): { files: number; packets: number; netascii: number } {
    return {
      files: this.#options.files.cachedBytes,
      packets: sharedPacketCache.bytes + (this.#pool?.packetBytes ?? 0),
      netascii: this.#netascii.bytes,
    };
  }

  async listen(): Promise<{ address: string; port: number }> {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    socket.on('message', (msg, rinfo) => {
      this.#onRequest(msg, rinfo).catch(() => {
        this.stats.malformed += 1;
      });
    });
    socket.on('error', () => {
      /* a send to an unreachable client must not bring the listener down */
    });
    socket.bind(this.#options.port ?? 69, this.#options.host ?? '0.0.0.0');
    await once(socket, 'listening');
    this.#socket = socket;
    const workers = this.#options.workers ?? 0;
    // Started at the first transfer: a role that serves nothing costs no threads (~30 MiB each).
    if (workers > 0) this.#pool = new TransferPool(workers);
    return socket.address();
  }

  /** Transfer workers ready, and how many died (and were started again). */
  workers(): { ready: number; crashes: number; lastError?: string } {
    const pool = this.#pool;
    return {
      ready: pool?.ready ?? 0,
      crashes: pool?.crashes ?? 0,
      ...(pool?.lastError ? { lastError: pool.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) socket.removeAllListeners('message');
    for (const transfer of [...this.#transfers]) transfer.close();
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.stop();
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  async #onRequest(msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    let packet;
    const reply = (code: TftpErrorCode, message: string) =>
      this.#socket?.send(encodeError(code, message), rinfo.port, rinfo.address);
    try {
      packet = decodePacket(msg);
    } catch (error) {
      if (!(error instanceof TftpDecodeError)) throw error;
      this.stats.malformed += 1;
      // A request in an undefined mode is a client's mistake, not garbage: say so (RFC 1350 error 4).
      if (error instanceof TftpUnknownModeError) reply(TftpErrorCode.IllegalOperation, 'unknown transfer mode');
      return;
    }
    if (packet.opcode === Opcode.Wrq) {
      this.#refuse(rinfo, packet.filename, 'write request');
      return reply(TftpErrorCode.AccessViolation, 'Access violation: read-only server');
    }
    if (packet.opcode !== Opcode.Rrq) {
      this.stats.malformed += 1;
      return reply(TftpErrorCode.IllegalOperation, 'expected a read request');
    }
    this.stats.requests += 1;
    if (packet.mode === 'mail') {
      this.#refuse(rinfo, packet.filename, 'mail mode');
      return reply(TftpErrorCode.IllegalOperation, 'mail mode is not supported');
    }
    const found = await this.#options.files.lookup(packet.filename);
    if (!found.ok) {
      this.#refuse(rinfo, packet.filename, found.detail);
      return found.reason === 'access-violation'
        ? reply(TftpErrorCode.AccessViolation, 'Access violation')
        : reply(TftpErrorCode.FileNotFound, 'File not found');
    }
    const data = packet.mode === 'netascii' ? this.#netascii.convert(found.data) : found.data;
    if (!data) {
      this.#refuse(rinfo, packet.filename, 'too large for netascii');
      return reply(TftpErrorCode.NotDefined, 'file too large for netascii; use octet');
    }
    const busy = this.#makeRoom(rinfo.address);
    if (busy) {
      this.#refuse(rinfo, packet.filename, busy);
      return reply(TftpErrorCode.NotDefined, 'server busy, try again');
    }
    this.#start(packet, data, rinfo);
  }

  /**
   * Finds a slot for a new request from this address, taking one back from the oldest unconfirmed
   * transfer (of this address first, then of anyone) when a limit is reached; else says which limit refuses it.
   */
  #makeRoom(address: string): string | undefined {
    const mine = this.#bySource.get(address);
    if (mine && mine.size >= (this.#options.maxPerSource ?? 32)) {
      if (!this.#evictOldestUnconfirmed(mine)) {
        this.stats.busyPerSource += 1;
        return 'busy: per-source limit';
      }
    }
    if (this.unconfirmed() >= (this.#options.maxUnconfirmed ?? 256)) this.#evictOldestUnconfirmed(this.#transfers);
    if (
      this.#transfers.size >= (this.#options.maxTransfers ?? 2000) &&
      !this.#evictOldestUnconfirmed(this.#transfers)
    ) {
      this.stats.busyTotal += 1;
      return 'busy: total limit';
    }
    return undefined;
  }

  /** Active transfers whose client has not acknowledged anything yet. */
  unconfirmed(): number {
    let n = 0;
    for (const t of this.#transfers) if (!t.confirmed) n += 1;
    return n;
  }

  #evictOldestUnconfirmed(among: Iterable<TransferHandle>): boolean {
    for (const transfer of among) {
      if (transfer.confirmed) continue;
      this.stats.evicted += 1;
      transfer.close('evicted');
      return true;
    }
    return false;
  }

  #refuse(rinfo: RemoteInfo, filename: string, detail: string): void {
    this.stats.refused += 1;
    this.#options.onTransfer?.({
      client: `${rinfo.address}:${rinfo.port}`,
      filename,
      outcome: 'refused',
      bytes: 0,
      detail,
    });
  }

  #start(request: RequestPacket, data: Buffer, rinfo: RemoteInfo): void {
    const negotiated = negotiate(request.options, data.length, this.#limits);
    // Retries are bounded by time as well as count: silence longer than maxSilenceMs ends a transfer.
    const retries = Math.max(
      1,
      Math.min(
        this.#options.maxRetries ?? 5,
        Math.floor((this.#options.maxSilenceMs ?? 10_000) / negotiated.timeoutMs),
      ),
    );
    const source = rinfo.address;
    const spec: TransferSpec = {
      peer: { address: rinfo.address, port: rinfo.port },
      negotiated,
      maxRetries: retries,
      bindHost: this.#options.host === '0.0.0.0' ? undefined : this.#options.host,
    };
    const onDone = (outcome: TransferOutcome, bytes: number, detail?: string) => {
      this.#transfers.delete(transfer);
      const set = this.#bySource.get(source);
      set?.delete(transfer);
      if (set?.size === 0) this.#bySource.delete(source);
      this.stats.active = this.#transfers.size;
      if (outcome === 'evicted') return; // most likely a spoofed request: no timeline event
      this.stats.bytesSent += bytes;
      if (outcome === 'completed') this.stats.completed += 1;
      else this.stats.failed += 1;
      this.#options.onTransfer?.({
        client: `${rinfo.address}:${rinfo.port}`,
        filename: request.filename,
        outcome,
        bytes,
        ...(detail ? { detail } : {}),
      });
    };
    // On a worker when one is ready, else here. Neither calls onDone before this returns, and the
    // transfer is registered at once, so that requests arriving in one burst see each other's slots.
    this.#pool?.start();
    const transfer: TransferHandle = this.#pool?.run(spec, data, onDone) ?? openTransfer(spec, data, onDone);
    this.#transfers.add(transfer);
    let set = this.#bySource.get(source);
    if (!set) this.#bySource.set(source, (set = new Set()));
    set.add(transfer);
    this.stats.active = this.#transfers.size;
  }
}
