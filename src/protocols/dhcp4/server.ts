/**
 * The DHCP socket: receives on UDP 67 (and 4011 in proxyDHCP mode), drops what does not decode,
 * asks the handler for a reply, and sends it where RFC 2131 §4.1 says. No inventory knowledge here.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { DhcpDecodeError } from './options.ts';
import { BOOTREQUEST, decodePacket, encodePacket, messageType, type DhcpPacket } from './packet.ts';
import type { Destination } from './reply-address.ts';

export interface DhcpReply {
  readonly packet: DhcpPacket;
  readonly to: Destination;
}

export type DhcpHandler = (
  request: DhcpPacket,
  context: { readonly port: number; readonly from: RemoteInfo },
) => Promise<DhcpReply | undefined>;

export interface DhcpServerStats {
  received: Record<string, number>;
  sent: Record<string, number>;
  malformed: number;
  dropped: number;
  errors: number;
}

/** ~4 000 queued requests (the kernel counts ~1 KiB per datagram); a second's worth at the bench's ceiling. */
export const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

const TYPE_NAMES = ['unknown', 'discover', 'offer', 'request', 'decline', 'ack', 'nak', 'release', 'inform'];

export class DhcpServer {
  readonly stats: DhcpServerStats = { received: {}, sent: {}, malformed: 0, dropped: 0, errors: 0 };
  readonly #sockets: Socket[] = [];

  constructor(
    private readonly handler: DhcpHandler,
    private readonly options: { host?: string; ports?: readonly number[]; onError?: (error: unknown) => void } = {},
  ) {}

  async listen(): Promise<void> {
    for (const port of this.options.ports ?? [67]) {
      // A deep receive queue: while a lease commit holds the thread, a burst of requests waits in the
      // kernel (the request then only waits longer) instead of being dropped for want of room.
      // Linux caps it at net.core.rmem_max.
      const socket = createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: RECEIVE_BUFFER_BYTES });
      socket.on('message', (msg, rinfo) => void this.#onMessage(socket, port, msg, rinfo));
      socket.on('error', (error) => this.options.onError?.(error));
      socket.bind(port, this.options.host ?? '0.0.0.0');
      await once(socket, 'listening');
      socket.setBroadcast(true);
      this.#sockets.push(socket);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  async #onMessage(socket: Socket, port: number, msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    let request: DhcpPacket;
    try {
      request = decodePacket(msg);
    } catch (error) {
      if (!(error instanceof DhcpDecodeError)) this.stats.errors += 1;
      this.stats.malformed += 1;
      return;
    }
    if (request.op !== BOOTREQUEST) {
      this.stats.dropped += 1;
      return;
    }
    const type = TYPE_NAMES[messageType(request) ?? 0]!;
    this.stats.received[type] = (this.stats.received[type] ?? 0) + 1;
    try {
      const reply = await this.handler(request, { port, from: rinfo });
      if (!reply) {
        this.stats.dropped += 1;
        return;
      }
      const sentType = TYPE_NAMES[messageType(reply.packet) ?? 0]!;
      this.stats.sent[sentType] = (this.stats.sent[sentType] ?? 0) + 1;
      // Replies to relays go to port 67 from port 67; to clients on 68. proxyDHCP answers on its own port.
      const destinationPort = port === 4011 && reply.to.port === 68 ? rinfo.port : reply.to.port;
      socket.send(encodePacket(reply.packet), destinationPort, reply.to.address);
    } catch (error) {
      this.stats.errors += 1;
      this.options.onError?.(error);
    }
  }
}
