/**
 * The per-hypervisor connection pool against a real libvirtd reached over TCP through a forwarder
 * that the test kills and restarts: the connection is lost and re-made, concurrent callers share
 * one attempt, a down hypervisor backs off, and lifecycle subscriptions survive the reconnect.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { LibvirtPool } from '../../../src/protocols/libvirt/pool.ts';
import { LibvirtClient, type LifecycleEvent } from '../../../src/protocols/libvirt/remote.ts';
import { ensureLibvirtd, startTcpForwarder, virshTest } from '../../helpers/libvirtd.ts';

let daemon: { stop(): Promise<void> };
before(async () => {
  daemon = await ensureLibvirtd();
});
after(async () => {
  await daemon?.stop();
});

test(
  'one shared connection per URI; lost, it is re-made on the next call; events keep coming',
  { timeout: 60_000 },
  async () => {
    let forwarder = await startTcpForwarder();
    const port = forwarder.port;
    const uri = `test+tcp://127.0.0.1:${port}/default`;
    let attempts = 0;
    const pool = new LibvirtPool({
      backoffMs: 200,
      maxBackoffMs: 400,
      keepalive: { intervalMs: 200, count: 3 },
      connect: (u, o) => (attempts++, LibvirtClient.connect(u, o)),
    });
    try {
      const [a, b, c] = await Promise.all([pool.client(uri), pool.client(uri), pool.client(uri)]);
      assert.ok(a === b && b === c, 'concurrent callers share one connection');
      assert.equal(attempts, 1);
      const events: LifecycleEvent[] = [];
      const name = `kvt-pool-${randomUUID().slice(0, 8)}`;
      await pool.onLifecycle(uri, (e) => e.domain.name === name && events.push(e));

      // The hypervisor goes away: the connection closes, and calls fail fast until it is back.
      await forwarder.stop();
      for (let i = 0; i < 50 && pool.status()[0]!.connected; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(pool.status()[0]!.connected, false);
      await assert.rejects(
        pool.use(uri, (cl) => cl.getType()),
        /ECONNREFUSED/,
      );
      const failedAttempts = attempts;
      await assert.rejects(
        pool.use(uri, (cl) => cl.getType()),
        /not connected .*next attempt after/,
        'backing off: no new attempt at once',
      );
      assert.equal(attempts, failedAttempts);

      // Back: after the backoff the next call reconnects, and the subscription is registered again.
      forwarder = await startTcpForwarder(port);
      await new Promise((r) => setTimeout(r, 450));
      assert.equal(await pool.use(uri, (cl) => cl.getType()), 'TEST');
      assert.equal(pool.status()[0]!.connects, 2);
      const { writeFile, rm } = await import('node:fs/promises');
      const file = `/tmp/${name}.xml`;
      await writeFile(
        file,
        `<domain type='test'><name>${name}</name><memory>65536</memory><os><type>hvm</type></os></domain>`,
      );
      await virshTest('define', file);
      await virshTest('undefine', name);
      await rm(file, { force: true });
      for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(
        events.map((e) => e.event),
        ['defined', 'undefined'],
        'events after the reconnect arrive through the pool',
      );

      // use(…, { retry: true }) survives a connection lost under a call that is safe to repeat.
      const first = await pool.client(uri);
      first.connection.close();
      assert.equal(await pool.use(uri, (cl) => cl.getType(), { retry: true }), 'TEST');
      assert.equal(pool.status()[0]!.connects, 3);
    } finally {
      await pool.close();
      await forwarder.stop();
    }
  },
);
