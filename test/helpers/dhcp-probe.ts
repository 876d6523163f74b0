/**
 * A scripted DHCP client for tests, run inside a client namespace (`node --import tsx
 * dhcp-probe.ts '<plan JSON>'` or `@plan.json`): sends the planned datagrams (bounded repeats), listens on UDP 68
 * (and 67, to play a relay) and prints every datagram it receives as one JSON line. The packets
 * are built by the caller with src/protocols/dhcp4/client-message.ts; this only moves bytes.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

export interface ProbeSend {
  readonly b64: string;
  readonly to: string;
  readonly port?: number;
  /** Source port: 68 (a client) or 67 (a relay). */
  readonly fromPort?: 67 | 68;
  readonly atMs?: number;
  /** Sent this many times (≤ 10 000), every intervalMs. */
  readonly repeat?: number;
  readonly intervalMs?: number;
}
export interface ProbePlan {
  readonly sends: readonly ProbeSend[];
  readonly listenMs: number;
  /** Bind to this address rather than 0.0.0.0 (a relay's own address). */
  readonly bind?: string;
}
export interface ProbeReceived {
  readonly port: number;
  readonly from: string;
  readonly b64: string;
  readonly atMs: number;
}

async function main(plan: ProbePlan): Promise<void> {
  const started = Date.now();
  const sockets = new Map<number, Socket>();
  for (const port of [67, 68]) {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (msg, rinfo) =>
      process.stdout.write(
        `${JSON.stringify({ port, from: rinfo.address, b64: msg.toString('base64'), atMs: Date.now() - started } satisfies ProbeReceived)}\n`,
      ),
    );
    socket.on('error', (error) => process.stderr.write(`probe socket ${port}: ${error.message}\n`));
    socket.bind(port, '0.0.0.0');
    await once(socket, 'listening');
    socket.setBroadcast(true);
    sockets.set(port, socket);
  }
  for (const send of plan.sends) {
    const bytes = Buffer.from(send.b64, 'base64');
    const repeat = Math.min(send.repeat ?? 1, 10_000);
    for (let i = 0; i < repeat; i++) {
      setTimeout(
        () => sockets.get(send.fromPort ?? 68)!.send(bytes, send.port ?? 67, send.to),
        (send.atMs ?? 0) + i * (send.intervalMs ?? 0),
      );
    }
  }
  await new Promise((r) => setTimeout(r, Math.min(plan.listenMs, 60_000)));
  for (const socket of sockets.values()) socket.close();
}

// The plan as JSON, or @file holding it (large plans exceed one argument's size limit).
const planArg = process.argv[2] ?? '';
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!))
  void main(JSON.parse(planArg.startsWith('@') ? readFileSync(planArg.slice(1), 'utf8') : planArg) as ProbePlan);
