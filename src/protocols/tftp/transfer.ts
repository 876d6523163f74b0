/**
 * One read transfer on its own UDP socket (its own TID, RFC 1350 §4). Sends a window of blocks
 * (RFC 7440; window 1 is plain lock-step), moves on at each ACK, resends the window from the
 * first unacknowledged block on timeout, and gives up after maxRetries silent timeouts.
 * Block numbers are 16-bit on the wire and wrap to 0; internally blocks are counted absolutely.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { decodePacket, encodeData, encodeError, encodeOack, Opcode, TftpDecodeError, TftpErrorCode } from './packet.ts';
import type { NegotiatedTransfer } from './options.ts';
import { PacketCache } from './packet-cache.ts';

/** One cache for the process (see packet-cache.ts). */
export const sharedPacketCache = new PacketCache();

/**
 * How long an OACK waits for its ACK 0 before the transfer is dropped, at the least. Clients
 * recover a lost ACK 0 or OACK by their own retransmission, on their own clock (atftp after 5 s,
 * whatever timeout the server was given for DATA): waiting only timeout × retries, as for DATA,
 * dropped the transfer before a 5-s client asked again, and it then met a closed port.
 */
const OACK_ACK_PATIENCE_MS = 15_000;

export type TransferOutcome = 'completed' | 'timed-out' | 'aborted-by-client' | 'protocol-error' | 'closed' | 'evicted';

export interface TransferPeer {
  readonly address: string;
  readonly port: number;
}

export class ReadTransfer {
  readonly #socket: Socket;
  readonly #peer: TransferPeer;
  readonly #data: Buffer;
  readonly #blockSize: number;
  readonly #windowSize: number;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #oack: Buffer | undefined;
  readonly #totalBlocks: number;
  #awaitingOackAck: boolean;
  /** Highest block the client has acknowledged (absolute count; 0 = none). */
  #acked = 0;
  #retries = 0;
  #timer: NodeJS.Timeout | undefined;
  #finished = false;
  readonly #onDone: (outcome: TransferOutcome, bytes: number) => void;
  readonly #packets: Buffer[];
  readonly #packetCache: PacketCache;
  readonly #onConfirmed: (() => void) | undefined;
  #bytesSent = 0;
  /** Whether the client has acknowledged anything yet: a spoofed request never does. */
  #confirmed = false;

  constructor(
    socket: Socket,
    peer: TransferPeer,
    data: Buffer,
    negotiated: NegotiatedTransfer,
    maxRetries: number,
    onDone: (outcome: TransferOutcome, bytes: number) => void,
    packetCache: PacketCache = sharedPacketCache,
    onConfirmed?: () => void,
  ) {
    this.#socket = socket;
    this.#peer = peer;
    this.#data = data;
    this.#blockSize = negotiated.blockSize;
    this.#windowSize = negotiated.windowSize;
    this.#timeoutMs = negotiated.timeoutMs;
    this.#maxRetries = maxRetries;
    this.#onDone = onDone;
    this.#oack = negotiated.oack.size > 0 ? encodeOack(negotiated.oack) : undefined;
    this.#awaitingOackAck = this.#oack !== undefined;
    // A file that is an exact multiple of the block size ends with an empty block.
    this.#totalBlocks = Math.floor(data.length / this.#blockSize) + 1;
    this.#packetCache = packetCache;
    this.#onConfirmed = onConfirmed;
    this.#packets = packetCache.packets(data, this.#blockSize);
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    socket.on('error', () => this.#finish('closed'));
  }

  start(): void {
    this.#sendWindow();
  }

  get finished(): boolean {
    return this.#finished;
  }

  get confirmed(): boolean {
    return this.#confirmed;
  }

  get peer(): TransferPeer {
    return this.#peer;
  }

  /** Stops the transfer (server shutdown, or its slot given to a newer request: 'evicted'). */
  close(outcome: 'closed' | 'evicted' = 'closed'): void {
    this.#finish(outcome);
  }

  #send(packet: Buffer): void {
    if (this.#finished) return;
    this.#socket.send(packet, this.#peer.port, this.#peer.address);
  }

  #sendWindow(): void {
    if (this.#awaitingOackAck) {
      this.#send(this.#oack!);
    } else {
      const last = Math.min(this.#acked + this.#windowSize, this.#totalBlocks);
      for (let block = this.#acked + 1; block <= last; block++) {
        let packet = this.#packets[block - 1];
        if (!packet) {
          const start = (block - 1) * this.#blockSize;
          packet = this.#packets[block - 1] = encodeData(
            block,
            this.#data.subarray(start, Math.min(start + this.#blockSize, this.#data.length)),
          );
          this.#packetCache.added(this.#data, packet.length);
        }
        this.#bytesSent += packet.length - 4;
        this.#send(packet);
      }
    }
    this.#arm();
  }

  /** (Re)starts the retransmission timer: one Timeout per transfer, refreshed at each window. */
  #arm(): void {
    if (this.#timer) this.#timer.refresh();
    else this.#timer = setTimeout(() => this.#onTimeout(), this.#timeoutMs);
  }

  #onTimeout(): void {
    if (this.#finished) return;
    this.#retries += 1;
    if (this.#retries > this.#retryLimit()) {
      // Not after an unanswered OACK: the client may be busy with a newer transfer of the same file.
      if (!this.#awaitingOackAck) this.#send(encodeError(TftpErrorCode.NotDefined, 'timed out'));
      this.#finish('timed-out');
      return;
    }
    // A lost OACK or a lost ACK of it looks the same from here. The OACK is not sent again: clients
    // such as atftp abort on a second OACK, and every client recovers by itself — it resends its RRQ
    // (a lost OACK; a fresh transfer answers it) or its ACK 0 (a lost ACK), which moves this one on.
    if (this.#awaitingOackAck) {
      this.#arm();
      return;
    }
    this.#sendWindow();
  }

  /** Retries allowed in a row: for the ACK of an OACK, enough to cover OACK_ACK_PATIENCE_MS. */
  #retryLimit(): number {
    return this.#awaitingOackAck
      ? Math.max(this.#maxRetries, Math.ceil(OACK_ACK_PATIENCE_MS / this.#timeoutMs))
      : this.#maxRetries;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#finished) return;
    if (rinfo.address !== this.#peer.address || rinfo.port !== this.#peer.port) {
      // RFC 1350 §4: a packet from a stranger gets ERROR 5 and does not disturb the transfer.
      this.#socket.send(encodeError(TftpErrorCode.UnknownTid, 'unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
    // Fast path for the packet that makes up half of all traffic: a well-formed ACK.
    if (msg.length === 4 && msg[0] === 0 && msg[1] === Opcode.Ack) {
      this.#onAck(msg.readUInt16BE(2));
      return;
    }
    let packet;
    try {
      packet = decodePacket(msg);
    } catch (error) {
      if (!(error instanceof TftpDecodeError)) throw error;
      this.#send(encodeError(TftpErrorCode.IllegalOperation, 'malformed packet'));
      this.#finish('protocol-error');
      return;
    }
    if (packet.opcode === Opcode.Error) {
      this.#finish('aborted-by-client'); // e.g. the client refused our OACK (error 8)
      return;
    }
    if (packet.opcode !== Opcode.Ack) {
      this.#send(encodeError(TftpErrorCode.IllegalOperation, 'expected an ACK'));
      this.#finish('protocol-error');
      return;
    }
    this.#onAck(packet.block);
  }

  #onAck(wireBlock: number): void {
    if (this.#awaitingOackAck) {
      if (wireBlock !== 0) return;
      this.#confirm();
      this.#awaitingOackAck = false;
      this.#retries = 0;
      this.#sendWindow();
      return;
    }
    // Which block in flight does this 16-bit number name? Only blocks after the last ACK count;
    // anything else is a duplicate or stale ACK and is ignored (no Sorcerer's Apprentice resend).
    const inFlight = Math.min(this.#acked + this.#windowSize, this.#totalBlocks);
    let acked = -1;
    for (let block = this.#acked + 1; block <= inFlight; block++) {
      if ((block & 0xffff) === wireBlock) {
        acked = block;
        break;
      }
    }
    if (acked < 0) return;
    if (!this.#confirmed) this.#confirm();
    this.#acked = acked;
    this.#retries = 0;
    if (acked === this.#totalBlocks) {
      this.#finish('completed');
      return;
    }
    // RFC 7440: an ACK inside the window means the client lost what followed; go on from there.
    this.#sendWindow();
  }

  #confirm(): void {
    this.#confirmed = true;
    this.#onConfirmed?.();
  }

  #finish(outcome: TransferOutcome): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timer);
    try {
      this.#socket.close();
    } catch {
      /* already closed */
    }
    this.#onDone(outcome, this.#bytesSent);
  }
}

/** What a transfer needs, wherever it runs (this thread or a transfer worker). */
export interface TransferSpec {
  readonly peer: TransferPeer;
  readonly negotiated: NegotiatedTransfer;
  readonly maxRetries: number;
  /** Address to bind the transfer's own socket to; undefined for any. */
  readonly bindHost: string | undefined;
}

/**
 * The peer's address is always an IPv4 literal (it comes from a received datagram): resolving it is
 * the identity, done at once instead of through dns.lookup and a tick per datagram sent.
 */
function literalLookup(
  address: string,
  _family: unknown,
  callback: (error: null, address: string, family: number) => void,
) {
  callback(null, address, 4);
}

/** Opens the transfer's socket (a fresh port: its TID) and starts sending once it is bound. */
export function openTransfer(
  spec: TransferSpec,
  data: Buffer,
  onDone: (outcome: TransferOutcome, bytes: number) => void,
  packetCache: PacketCache = sharedPacketCache,
  onConfirmed?: () => void,
): ReadTransfer {
  const socket = createSocket({ type: 'udp4', lookup: literalLookup as never });
  const transfer = new ReadTransfer(
    socket,
    spec.peer,
    data,
    spec.negotiated,
    spec.maxRetries,
    onDone,
    packetCache,
    onConfirmed,
  );
  socket.bind(0, spec.bindHost, () => {
    if (!transfer.finished) transfer.start();
  });
  return transfer;
}
