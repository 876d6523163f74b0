/** A handler's store error reaches the DHCP server's error log with its cause (real datagrams on loopback). */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { describeError, rateLimitedErrorLog } from '../../../src/boot/error-log.ts';
import { buildClientMessage } from '../../../src/protocols/dhcp4/client-message.ts';
import { encodePacket, MessageType } from '../../../src/protocols/dhcp4/packet.ts';
import { DhcpServer } from '../../../src/protocols/dhcp4/server.ts';

test("a failing handler is logged with the store's cause and counted; the server keeps answering", async () => {
  const lines: string[] = [];
  const port = 20000 + (process.pid % 20000);
  let calls = 0;
  const server = new DhcpServer(
    async () => {
      calls += 1;
      throw new Error('lease 10.0.0.5 for 52:54:00:00:00:01 not stored', {
        cause: new Error('invalid byte sequence for encoding "UTF8": 0x00'),
      });
    },
    { host: '127.0.0.1', ports: [port], onError: rateLimitedErrorLog('dhcp', 20, (line) => lines.push(line)) },
  );
  await server.listen();
  const client = createSocket('udp4');
  try {
    for (let i = 0; i < 3; i++)
      client.send(
        encodePacket(buildClientMessage(MessageType.Discover, { mac: '52:54:00:00:00:01' })),
        port,
        '127.0.0.1',
      );
    for (let i = 0; i < 50 && lines.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    client.close();
    await server.close();
  }
  assert.equal(calls, 3);
  assert.equal(server.stats.errors, 3);
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^dhcp error: lease 10\.0\.0\.5 .* not stored: caused by: invalid byte sequence/);
  assert.match(describeError(new Error('x')), /^x$/);
});
