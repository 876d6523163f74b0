/**
 * A read-only TFTP server: the listener takes requests, each read runs on its own socket.
 * Write requests are refused; malformed datagrams are counted and dropped without a reply
 * (a reply to garbage from a spoofed source would make us an amplifier).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { FileStore } from './files.ts';
import { negotiate, type TransferLimits } from './options.ts';
import { decodePacket, encodeError, Opcode, TftpDecodeError, TftpErrorCode, type RequestPacket } from './packet.ts';
import { ReadTransfer, type TransferOutcome } from './transfer.ts';

export interface TftpServerOptions {
  readonly files: FileStore;
  readonly host?: string;
  readonly port?: number;
  readonly limits?: Partial<TransferLimits>;
  /** Timeouts in a row after which a transfer is abandoned. */
  readonly maxRetries?: number;
  /** Transfers at once; more are refused with "server busy" so clients retry. */
  readonly maxTransfers?: number;
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
  completed: number;
  failed: number;
  refused: number;
  malformed: number;
  bytesSent: number;
}

export class TftpServer {
  readonly stats: TftpStats = { requests: 0, active: 0, completed: 0, failed: 0, refused: 0, malformed: 0, bytesSent: 0 };
  readonly #options: TftpServerOptions;
  readonly #limits: TransferLimits;
  readonly #transfers = new Set<ReadTransfer>();
  #socket: Socket | undefined;

  constructor(options: TftpServerOptions) {
    this.#options = options;
    this.#limits = { maxBlockSize: 65464, maxWindowSize: 64, defaultTimeoutMs: 1000, ...options.limits };
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
    return socket.address();
  }

  async close(): Promise<void> {
    for (const transfer of this.#transfers) transfer.close();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  async #onRequest(msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    let packet;
    try {
      packet = decodePacket(msg);
    } catch (error) {
      if (!(error instanceof TftpDecodeError)) throw error;
      this.stats.malformed += 1;
      return;
    }
    const reply = (code: TftpErrorCode, message: string) => this.#socket?.send(encodeError(code, message), rinfo.port, rinfo.address);
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
    if (this.#transfers.size >= (this.#options.maxTransfers ?? 5000)) {
      this.#refuse(rinfo, packet.filename, 'busy');
      return reply(TftpErrorCode.NotDefined, 'server busy, try again');
    }
    const found = await this.#options.files.lookup(packet.filename);
    if (!found.ok) {
      this.#refuse(rinfo, packet.filename, found.detail);
      return found.reason === 'access-violation' ? reply(TftpErrorCode.AccessViolation, 'Access violation') : reply(TftpErrorCode.FileNotFound, 'File not found');
    }
    this.#start(packet, found.data, rinfo);
  }

  #refuse(rinfo: RemoteInfo, filename: string, detail: string): void {
    this.stats.refused += 1;
    this.#options.onTransfer?.({ client: `${rinfo.address}:${rinfo.port}`, filename, outcome: 'refused', bytes: 0, detail });
  }

  #start(request: RequestPacket, file: Buffer, rinfo: RemoteInfo): void {
    const data = request.mode === 'netascii' ? toNetascii(file) : file;
    const negotiated = negotiate(request.options, data.length, this.#limits);
    const socket = createSocket('udp4');
    socket.bind(0, this.#options.host === '0.0.0.0' ? undefined : this.#options.host, () => {
      const transfer = new ReadTransfer(socket, { address: rinfo.address, port: rinfo.port }, data, negotiated, this.#options.maxRetries ?? 5, (outcome, bytes) => {
        this.#transfers.delete(transfer);
        this.stats.active = this.#transfers.size;
        this.stats.bytesSent += bytes;
        if (outcome === 'completed') this.stats.completed += 1;
        else this.stats.failed += 1;
        this.#options.onTransfer?.({ client: `${rinfo.address}:${rinfo.port}`, filename: request.filename, outcome, bytes });
      });
      this.#transfers.add(transfer);
      this.stats.active = this.#transfers.size;
      transfer.start();
    });
  }
}

/** RFC 1350 netascii: LF → CR LF, CR → CR NUL. */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (const byte of data) if (byte === 10 || byte === 13) extra += 1;
  if (extra === 0) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  for (const byte of data) {
    if (byte === 10) {
      out[o++] = 13;
      out[o++] = 10;
    } else if (byte === 13) {
      out[o++] = 13;
      out[o++] = 0;
    } else out[o++] = byte;
  }
  return out;
}
