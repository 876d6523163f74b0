/**
 * Read transfers on worker threads (transfer-pool.ts): byte-identical lock-step and windowed
 * transfers with the same events and stats as in the main thread, a worker that dies ends its
 * transfers as 'closed' and is replaced while the main thread serves, and close() ends in-flight
 * transfers (reported) and the threads. A small TFTP client on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileStore } from '../../../src/protocols/tftp/files.ts';
import { negotiate } from '../../../src/protocols/tftp/options.ts';
import { decodePacket, encodeAck, encodeRequest, Opcode } from '../../../src/protocols/tftp/packet.ts';
import { TftpServer, type TransferEvent } from '../../../src/protocols/tftp/server.ts';
import { sharedPacketCache, type TransferOutcome } from '../../../src/protocols/tftp/transfer.ts';
import { TransferPool } from '../../../src/protocols/tftp/transfer-pool.ts';

const HOST = '127.0.0.1';

/** A client socket that acknowledges DATA as RFC 1350/7440 clients do, and collects the file. */
interface Client {
  readonly socket: Socket;
  readonly port: number;
  /** The file, or the ERROR the server sent. */
  readonly done: Promise<Buffer>;
  /** Blocks received so far. */
  blocks(): number;
}

async function client(blockSize = 512, windowSize = 1, ackEvery = true): Promise<Client> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  const chunks: Buffer[] = [];
  let next = 1;
  const done = new Promise<Buffer>((resolve, reject) => {
    socket.on('message', (msg, rinfo) => {
      const ack = (block: number) => socket.send(encodeAck(block), rinfo.port, rinfo.address);
      const packet = decodePacket(msg);
      if (packet.opcode === Opcode.Oack) return ack(0);
      if (packet.opcode === Opcode.Error) return reject(new Error(`ERROR ${packet.code}: ${packet.message}`));
      if (packet.opcode !== Opcode.Data || packet.block !== (next & 0xffff)) return;
      chunks.push(Buffer.from(packet.data));
      next += 1;
      const last = packet.data.length < blockSize;
      if (!ackEvery && !last) return; // a silent client: the server must not hear from it
      if (last || (next - 1) % windowSize === 0) ack(packet.block);
      if (last) resolve(Buffer.concat(chunks));
    });
  });
  done.catch(() => {});
  return { socket, port: socket.address().port, done, blocks: () => next - 1 };
}

async function fetch(port: number, name: string, options: Record<string, string> = {}): Promise<Buffer> {
  const c = await client(Number(options.blksize ?? 512), Number(options.windowsize ?? 1));
  c.socket.send(encodeRequest(Opcode.Rrq, name, 'octet', new Map(Object.entries(options))), port, HOST);
  try {
    return await c.done;
  } finally {
    c.socket.close();
  }
}

async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('TFTP transfers on worker threads', { timeout: 120_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'kvt-tftpw-'));
  const big = randomBytes((1 << 20) + 77);
  const small = randomBytes(513);
  writeFileSync(join(root, 'big.bin'), big);
  writeFileSync(join(root, 'small.bin'), small);
  after(() => rmSync(root, { recursive: true, force: true }));

  test('lock-step and windowed transfers are byte-identical, with the events and stats of the main thread', async () => {
    const events: TransferEvent[] = [];
    const server = new TftpServer({
      files: new FileStore({ root }),
      host: HOST,
      port: 0,
      workers: 2,
      onTransfer: (event) => events.push(event),
    });
    const { port } = await server.listen();
    try {
      assert.equal(server.workers().ready, 0, 'no threads before the first transfer');
      // The first transfer starts the workers; until they are ready transfers run in this thread.
      assert.ok((await fetch(port, 'small.bin')).equals(small));
      await until(() => server.workers().ready === 2, 'two ready workers');
      const mainPackets = sharedPacketCache.bytes;
      const fetches = [
        ...Array.from({ length: 6 }, () => fetch(port, 'big.bin')),
        ...Array.from({ length: 6 }, () => fetch(port, 'big.bin', { blksize: '1428', windowsize: '16', tsize: '0' })),
        fetch(port, 'small.bin', { blksize: '512' }),
      ];
      const got = await Promise.all(fetches);
      for (const data of got.slice(0, 12)) assert.ok(data.equals(big), 'big.bin byte-identical');
      assert.ok(got[12]!.equals(small), 'small.bin byte-identical');
      await until(() => events.length === 14, 'an event per transfer');
      assert.deepEqual(
        events.map((e) => [e.outcome, e.bytes]).sort(),
        [...Array(12).fill(['completed', big.length]), ...Array(2).fill(['completed', small.length])].sort(),
      );
      assert.equal(server.stats.completed, 14);
      assert.equal(server.stats.active, 0);
      assert.equal(server.stats.bytesSent, 12 * big.length + 2 * small.length);
      // The DATA packets were built in the workers, not here.
      assert.equal(sharedPacketCache.bytes, mainPackets, 'no packets built in the main thread');
      assert.ok(server.memory().packets >= big.length, 'the workers report the packets they hold');
      await assert.rejects(fetch(port, '../etc/passwd'), /ERROR 2/);
    } finally {
      await server.close();
    }
    assert.deepEqual(server.workers(), { ready: 0, crashes: 0 });
  });

  test('a worker that dies ends its transfers as closed and is replaced; meanwhile none is offered', async () => {
    const pool = new TransferPool(1);
    pool.start();
    try {
      await until(() => pool.ready === 1, 'a ready worker');
      const spec = (port: number) => ({
        peer: { address: HOST, port },
        negotiated: negotiate(new Map(), big.length, {
          maxBlockSize: 65464,
          maxWindowSize: 64,
          defaultTimeoutMs: 5000,
        }),
        maxRetries: 5,
        bindHost: HOST,
      });
      // A client that takes the first block and then says nothing: the transfer is in flight on the worker.
      const silent = await client(512, 1, false);
      const ended: [TransferOutcome, number, string?][] = [];
      const handle = pool.run(spec(silent.port), big, (...args) => ended.push(args));
      assert.ok(handle, 'a ready worker takes the transfer');
      await until(() => silent.blocks() === 1, 'the first DATA block');
      await pool.threads()[0]!.terminate();
      await until(() => ended.length === 1, 'the transfer to end');
      assert.deepEqual(ended, [['closed', 0, 'transfer worker exited']]);
      assert.ok(handle.finished);
      assert.equal(pool.crashes, 1);
      assert.equal(
        pool.run(spec(silent.port), big, () => {}),
        undefined,
        'no worker to take a transfer',
      );
      silent.socket.close();
      // Started again: it serves the next transfer to its end.
      await until(() => pool.ready === 1, 'a new worker');
      const next = await client();
      const outcome = new Promise<[TransferOutcome, number]>((resolve) =>
        pool.run(spec(next.port), big, (o, bytes) => resolve([o, bytes])),
      );
      assert.ok((await next.done).equals(big));
      assert.deepEqual(await outcome, ['completed', big.length]);
      next.socket.close();
    } finally {
      await pool.stop();
    }
    assert.equal(pool.ready, 0);
  });

  test('close() ends the transfers in flight on the workers (reported as closed) and the threads', async () => {
    const events: TransferEvent[] = [];
    const server = new TftpServer({
      files: new FileStore({ root }),
      host: HOST,
      port: 0,
      workers: 1,
      onTransfer: (event) => events.push(event),
    });
    const { port } = await server.listen();
    assert.ok((await fetch(port, 'small.bin')).equals(small), 'a first transfer starts the worker');
    await until(() => server.workers().ready === 1, 'a ready worker');
    events.length = 0;
    const silent = await client(512, 1, false);
    silent.socket.send(encodeRequest(Opcode.Rrq, 'big.bin', 'octet'), port, HOST);
    await until(() => silent.blocks() === 1, 'the first DATA block');
    assert.equal(server.stats.active, 1);
    await server.close();
    silent.socket.close();
    assert.deepEqual(
      events.map((e) => [e.outcome, e.bytes]),
      [['closed', 512]],
    );
    assert.equal(server.stats.active, 0);
    assert.equal(server.workers().ready, 0);
  });
});
